"""What a config asks of memory, checked before anything is allocated: an absurd `--steps`,
`--epochs` or `--hidden-sizes` is one line naming the key, not a NumPy MemoryError later."""

from __future__ import annotations

import os

from chainrule._io import human_size

from .config import ConfigError, TrainConfig

HISTORY_BYTES_PER_STEP = 16  # the per-step loss and lr, float64 each (`History`)
# an MLP's weights, their gradients and up to two optimizer states (Adam) per parameter
COPIES_PER_PARAMETER = 4


def physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    cfg: TrainConfig, total_steps: int, in_features: int, num_classes: int, available: int | None = None
) -> None:
    """Raise `ConfigError` when the run's per-step history or (MLP) parameters would need more than
    half of `available` bytes (default: this machine's RAM)."""
    available = physical_memory() if available is None else available
    if not available:
        return
    history = HISTORY_BYTES_PER_STEP * total_steps
    if history > available / 2:
        key, value = ("steps", cfg.steps) if cfg.steps is not None else ("epochs", cfg.epochs)
        raise ConfigError(
            f"{key} = {value!r} means {total_steps:,} steps, whose loss history alone needs "
            f"{human_size(history)}; this machine has {human_size(available)} of memory"
        )
    if cfg.model != "mlp":
        return
    widths = [in_features, *cfg.hidden_sizes, num_classes]
    params = sum((a + 1) * b for a, b in zip(widths, widths[1:], strict=False))
    itemsize = 8 if cfg.dtype == "float64" else 4
    need = params * itemsize * COPIES_PER_PARAMETER
    if need > available / 2:
        raise ConfigError(
            f"hidden_sizes = {cfg.hidden_sizes} gives {params:,} parameters, which need about "
            f"{human_size(need)} (weights, gradients, optimizer state); "
            f"this machine has {human_size(available)}"
        )
