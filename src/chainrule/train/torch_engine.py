"""The torch engine: the same models, optimizers and penalties as the NumPy engine, in PyTorch.

An MLP is first built by the NumPy engine's builder from the same config and seed, then copied into
`torch.nn` modules (`chainrule.torch_ref.to_torch`): both engines start from identical weights, and
`model.npz` is written from a NumPy twin, so a model trained here is evaluated and used by
`chainrule evaluate` / `predict` like any other.

One step is

    logits = model(x)                              # under bf16 autocast with --precision bf16
    loss   = cross_entropy(logits, y)              # mean over the batch, as the NumPy engine
    loss.backward()
    p.grad += l1 sign(p) + l2 p                    # the L1/L2 penalty on weights (ndim >= 2), if any
    optimizer.step()                               # torch.optim.SGD / Adam / AdamW / RMSprop

Image models take uint8 (B, C, H, W) batches; they are converted and standardized here, on the
device, so the data set stays uint8 in memory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .builders import build_model, optimizer_kwargs
from .config import ConfigError, TrainConfig
from .engine import TrainingDiverged, limit_threads

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_support() -> str | None:
    """'amx' or 'avx512_bf16' when this CPU has native bf16 matrix instructions, else None.

    Having them does not make bf16 faster: that is measured per run (`chainrule.train.precision`).
    """
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    return None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device = 'cuda' is invalid: torch sees no CUDA device (use --device cpu or auto)")
    return torch.device(name)


def bf16_unavailable_on(device: torch.device) -> str | None:
    """Why bf16 cannot run on `device` (None: it can). Without native instructions torch emulates
    bf16 on a CPU, several times slower than fp32, so that counts as cannot."""
    if device.type == "cpu" and cpu_bf16_support() is None:
        return "this CPU has neither AVX512-BF16 nor AMX"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16"
    return None


def check_precision(precision: str, device: torch.device) -> None:
    if precision != "bf16":
        return
    cannot = bf16_unavailable_on(device)
    if cannot is not None:
        raise ConfigError(f"precision = 'bf16' is invalid: {cannot} (use --precision fp32 or auto)")


# the torch.optim twins of chainrule.optim's optimizers (`--optimizer muon` is `build_muon_chain`)
TORCH_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
OPTIMIZERS = (*TORCH_OPTIMIZERS, "muon")  # what the torch engine builds


def build_torch_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    """The torch.optim twin of `chainrule.optim.make_optimizer(cfg.optimizer, ...)` (same defaults:
    Adam eps 1e-8, RMSprop alpha 0.99 and eps 1e-8). `params` may be parameter groups; a group's
    own lr / weight_decay override the config's."""
    return TORCH_OPTIMIZERS[cfg.optimizer](params, **optimizer_kwargs(cfg))


def build_muon_chain(cfg: TrainConfig, model: torch.nn.Module) -> Any:
    """`--optimizer muon`: Muon (`--muon-lr`, `--muon-momentum`) for every trainable weight matrix
    or convolution except the output layer (the last one); SGD (`--momentum`, `--nesterov`) for the
    output layer at `--lr` and `--weight-decay`, and for every vector (biases, BatchNorm shifts) at
    lr x `--bias-lr-scale` with weight decay / bias_lr_scale (the same decay per step). Each group
    carries its lr_scale relative to `--lr`, so one schedule drives all three."""
    from chainrule.torch_ref.optim import Muon, OptimizerChain

    trainable = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in trainable if p.ndim >= 2]
    vectors = [p for p in trainable if p.ndim < 2]
    if len(matrices) < 2:
        raise ConfigError(
            f"optimizer = 'muon' needs a weight matrix besides the output layer; model {cfg.model!r} has "
            f"{len(matrices)} trainable matrices"
        )
    scale = cfg.bias_lr_scale
    groups = [
        dict(name="output", params=matrices[-1:], lr=cfg.lr, weight_decay=cfg.weight_decay, lr_scale=1.0)
    ]
    if vectors:
        groups.append(
            dict(
                name="vectors",
                params=vectors,
                lr=cfg.lr * scale,
                weight_decay=cfg.weight_decay / scale,
                lr_scale=scale,
            )
        )
    sgd = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    muon = Muon(
        [dict(name="muon", params=matrices[:-1], lr=cfg.muon_lr, lr_scale=cfg.muon_lr / cfg.lr)],
        momentum=cfg.muon_momentum,
        nesterov=cfg.nesterov,
        ns_steps=cfg.muon_ns_steps,
        normalize_weights=cfg.muon_normalize,
    )
    return OptimizerChain([sgd, muon])


def _to_numpy(obj: Any) -> Any:
    """Tensors -> NumPy arrays, recursively (for checkpoints: no pickle, no torch types)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def _to_torch(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj, copy=True))
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_torch(v) for v in obj)
    return obj


_IMAGE_CHUNK = 500  # images per forward pass when evaluating (conv activations are large)
_MLP_ROWS = 10000  # rows per forward pass when evaluating a saved MLP


def image_logits(
    model: torch.nn.Module,
    chunks: Any,
    level: int,
    autocast_dtype: torch.dtype | None = None,
    device_type: str = "cpu",
) -> torch.Tensor:
    """Eval-mode logits of an image model over `chunks` (an iterable of (n, C, H, W) float tensors),
    with test-time augmentation `level` (`chainrule.torch_ref.cnn.tta_logits`), under autocast to
    `autocast_dtype` if given (the result in fp32). The model must already be in eval mode."""
    from chainrule.torch_ref.cnn import tta_logits

    parts = []
    with torch.no_grad():
        for xt in chunks:
            if autocast_dtype is None:
                parts.append(tta_logits(model, xt, level=level))
            else:
                with torch.autocast(device_type, dtype=autocast_dtype):
                    parts.append(tta_logits(model, xt, level=level).float())
    return torch.cat(parts)


class TorchEngine:
    """Args: see `chainrule.train.engine.Engine`."""

    backend = "torch"

    @staticmethod
    def check_config(cfg: TrainConfig) -> None:
        """The torch engine's part of validation: an optimizer and a model it builds."""
        from chainrule.torch_ref.cnn import CNN_NAMES

        if cfg.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer = {cfg.optimizer!r} is not one of the torch engine's {', '.join(OPTIMIZERS)}"
            )
        if cfg.model != "mlp" and cfg.model not in CNN_NAMES:
            raise ConfigError(
                f"model = {cfg.model!r} is not one of the torch engine's mlp, {', '.join(CNN_NAMES)}"
            )

    @staticmethod
    def bf16_unavailable(cfg: TrainConfig) -> str | None:
        """Why bf16 cannot run for `cfg` here (None: it can): `--precision auto` times bf16 only then."""
        if cfg.dtype != "float32":
            return f"bf16 autocast needs float32 parameters, not {cfg.dtype}"
        return bf16_unavailable_on(resolve_device(cfg.device))

    @staticmethod
    def preflight(cfg: TrainConfig) -> None:
        """The device `cfg.device` present, and bf16 supported there if asked for."""
        check_precision(cfg.precision, resolve_device(cfg.device))

    def __init__(
        self,
        cfg: TrainConfig,
        in_shape: tuple[int, ...],
        num_classes: int,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        sample: np.ndarray | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = _DTYPES[cfg.dtype]
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self._threads = limit_threads(cfg.threads)
        check_precision(cfg.precision, self.device)
        # "auto" is resolved by `train_run` before the engine is built; a Trainer made directly trains fp32
        self.autocast_dtype = torch.bfloat16 if cfg.precision == "bf16" else None
        torch.manual_seed(cfg.seed)  # dropout masks (and any torch-side initialization)
        self.images = len(in_shape) == 3
        self._twin: Any = None  # the NumPy model that model.npz is written from (MLPs)
        if cfg.model == "mlp":
            if len(in_shape) != 1:
                raise ConfigError(f"--model mlp takes flattened inputs, got sample shape {in_shape}")
            from chainrule.torch_ref import to_torch

            self._twin = build_model(cfg, int(in_shape[0]), num_classes)
            self.model = to_torch(self._twin, batch_norm_impl=cfg.batch_norm_impl)
        else:
            self.model = self._build_image_model(in_shape, num_classes, mean, std, sample)
        self.model = self.model.to(self.device)
        if self.images:  # channels-last convolutions are faster on CPUs (oneDNN)
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer: Any
        if cfg.optimizer == "muon":
            self.optimizer = build_muon_chain(cfg, self.model)
        elif self.images and cfg.bias_lr_scale != 1.0:
            from chainrule.torch_ref.cnn import param_groups

            self.optimizer = build_torch_optimizer(
                cfg, param_groups(self.model, cfg.lr, cfg.weight_decay, cfg.bias_lr_scale)
            )
        else:
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            self.optimizer = build_torch_optimizer(cfg, [{"params": trainable, "lr_scale": 1.0}])
        self.lookahead: Any = None
        if cfg.lookahead:
            from chainrule.torch_ref.cnn import LookaheadEMA

            self.lookahead = LookaheadEMA(self.model)
        self.total_steps = 1  # set by the trainer (the lookahead's decay follows the progress)
        self.steps_done = 0
        self.l1, self.l2 = float(cfg.l1), float(cfg.l2)
        # Same selection as chainrule.nn.Penalty: weight matrices, not biases or BatchNorm's gamma/beta.
        self.penalized = [p for p in self.model.parameters() if p.ndim >= 2] if self.l1 or self.l2 else []
        self._scale: torch.Tensor | None = None
        self._shift: torch.Tensor | None = None
        if self.images:  # x_float = x_uint8 * scale - shift == (x/255 - mean) / std, per channel
            from chainrule.data.preprocess import normalizer

            m = mean if mean is not None else np.zeros(in_shape[0])
            s = std if std is not None else np.ones(in_shape[0])
            scale, shift = normalizer(m, s, np.dtype(cfg.dtype))  # (C,), as the NumPy path's
            self._scale = torch.from_numpy(scale).to(self.device).view(1, -1, 1, 1)
            self._shift = torch.from_numpy(shift).to(self.device).view(1, -1, 1, 1)

    def _build_image_model(
        self,
        in_shape: tuple[int, ...],
        num_classes: int,
        mean: np.ndarray | None,
        std: np.ndarray | None,
        sample: np.ndarray | None,
    ) -> torch.nn.Module:
        from chainrule.torch_ref.cnn import FastNet, build_cnn, init_whitening

        cfg = self.cfg
        if len(in_shape) != 3:
            raise ConfigError(f"model = {cfg.model!r} takes images (C, H, W), got sample shape {in_shape}")
        if cfg.dtype != "float32":
            raise ConfigError(f"model = {cfg.model!r} trains in float32 (--dtype float32)")
        self.spec = {
            "name": cfg.model,
            "in_shape": list(in_shape),
            "num_classes": num_classes,
            "opts": {"widths": list(cfg.widths)} if cfg.widths else {},
            "tta": cfg.tta,
        }
        try:
            model = build_cnn(cfg.model, tuple(in_shape), num_classes, seed=cfg.seed, **self.spec["opts"])
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if isinstance(model, FastNet):
            if sample is None:
                raise ConfigError(f"model = {cfg.model!r} needs training images to whiten its stem")
            init_whitening(model, sample, np.asarray(mean).tolist(), np.asarray(std).tolist())
        return model

    # ---- the step --------------------------------------------------------------------------------
    def _input(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x if x.flags.writeable else np.array(x))
        t = t.to(self.device, non_blocking=True)
        if self.images:
            assert self._scale is not None and self._shift is not None
            # one copy: uint8 -> float in the channels-last layout the convolutions want, then in place
            t = t.to(self.dtype, memory_format=torch.channels_last).mul_(self._scale).sub_(self._shift)
        return t

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self.model(x)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return self.model(x).float()

    def set_lr(self, lr: float) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)

    def get_lr(self) -> float:
        g = self.optimizer.param_groups[0]
        return float(g["lr"] / g.get("lr_scale", 1.0))

    def _chunks(self, n: int) -> int:
        """How many micro-batches a batch of n samples is split into (none of one sample, which
        BatchNorm cannot normalize)."""
        m = self.cfg.micro_batch
        if m <= 0 or n <= m:
            return 1
        chunks = math.ceil(n / m)
        return chunks if n // chunks >= 2 else max(1, n // 2)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        xt = self._input(x)
        yt = torch.from_numpy(y).to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        chunks = self._chunks(len(y))
        value = 0.0
        for xs, ys in zip(torch.tensor_split(xt, chunks), torch.tensor_split(yt, chunks), strict=True):
            loss = F.cross_entropy(self._forward(xs), ys, label_smoothing=self.cfg.label_smoothing)
            if chunks > 1:  # gradient accumulation: each chunk's mean loss weighted by its share
                loss = loss * (len(ys) / len(yt))
            value += float(loss.item())
            if not math.isfinite(value):
                raise TrainingDiverged(f"the training loss is not finite ({value})")
            loss.backward()
        if self.penalized:
            with torch.no_grad():
                for p in self.penalized:
                    assert p.grad is not None
                    if self.l2:
                        p.grad.add_(p, alpha=self.l2)
                    if self.l1:
                        p.grad.add_(torch.sign(p), alpha=self.l1)
        self.optimizer.step()
        self.steps_done += 1
        if self.lookahead is not None:
            if self.steps_done >= self.total_steps:  # the run ends on the slow weights
                self.lookahead.finish(self.model)
            elif self.steps_done % self.cfg.lookahead_every == 0:
                # the slow weights follow more closely as training ends (decay -> 0.95^5 at the end)
                progress = self.steps_done / self.total_steps
                self.lookahead.update(self.model, decay=0.95**5 * progress**3)
        return value

    def logits(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        try:
            if not self.images:
                with torch.no_grad():
                    out = self._forward(self._input(x))
            else:  # in chunks: activations of conv nets are large
                chunks = (self._input(x[s : s + _IMAGE_CHUNK]) for s in range(0, len(x), _IMAGE_CHUNK))
                level = self.cfg.tta if final else 0
                out = image_logits(self.model, chunks, level, self.autocast_dtype, self.device.type)
        finally:
            self.model.train(was_training)
        return out.detach().cpu().numpy()

    @staticmethod
    def saved_logits(model: Any, x: np.ndarray, image_shape: tuple[int, ...], tta: int = 0) -> np.ndarray:
        """Eval-mode logits of a saved model (`chainrule evaluate` / `predict`) in fp32: a torch image
        model fed the standardized images as (N, C, H, W) with test-time augmentation `tta`, or a
        `chainrule.nn` MLP computed by its torch copy.

        Shape: x (N, C*H*W) standardized floats -> (N, classes)."""
        from chainrule.nn import Module

        if not isinstance(model, Module):  # a torch.nn.Module (image model)
            shape = (-1, *image_shape)
            chunks = (
                torch.from_numpy(np.ascontiguousarray(x[s : s + _IMAGE_CHUNK]).reshape(shape))
                for s in range(0, len(x), _IMAGE_CHUNK)
            )
            return image_logits(model, chunks, tta).numpy()  # a saved model is fp32
        from chainrule.torch_ref import to_torch

        twin = to_torch(model).eval()
        with torch.no_grad():
            parts = [
                twin(torch.from_numpy(np.ascontiguousarray(x[s : s + _MLP_ROWS])))
                for s in range(0, len(x), _MLP_ROWS)
            ]
        return torch.cat(parts).numpy()

    # ---- checks and state -------------------------------------------------------------------------
    def check_finite(self) -> None:
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                    raise TrainingDiverged(f"the gradient of {name} contains NaN/Inf")
                if not bool(torch.isfinite(p).all()):
                    raise TrainingDiverged(f"weight {name} contains NaN/Inf")

    def penalty_loss(self) -> float | None:
        if not self.penalized:
            return None
        total = 0.0
        with torch.no_grad():
            for p in self.penalized:
                if self.l1:
                    total += self.l1 * float(p.abs().sum(dtype=torch.float64))
                if self.l2:
                    total += 0.5 * self.l2 * float((p.double() ** 2).sum())
        return total

    def model_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def load_model_state(self, state: dict[str, np.ndarray]) -> None:
        own = self.model.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"the saved model has no {', '.join(missing)}")
        self.model.load_state_dict({k: torch.from_numpy(np.array(state[k], copy=True)) for k in own})

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend,
            "model": self.model_state(),
            "optimizer": _to_numpy(self.optimizer.state_dict()),
            "torch_rng": torch.get_rng_state().numpy().copy(),
            "steps_done": self.steps_done,
        }
        if self.lookahead is not None:
            out["lookahead"] = {k: v.detach().cpu().numpy().copy() for k, v in self.lookahead.slow.items()}
        if self.device.type == "cuda":
            out["cuda_rng"] = torch.cuda.get_rng_state(self.device).numpy().copy()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("backend", "numpy") != self.backend:
            raise ValueError(
                f"it was written by the {state.get('backend', 'numpy')} engine, this run uses torch"
            )
        self.load_model_state(state["model"])
        self.optimizer.load_state_dict(_to_torch(state["optimizer"]))
        torch.set_rng_state(torch.from_numpy(np.array(state["torch_rng"], np.uint8)))
        self.steps_done = int(state.get("steps_done", 0))
        if self.lookahead is not None:
            for k, v in state["lookahead"].items():
                self.lookahead.slow[k].copy_(torch.from_numpy(np.array(v)))
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(torch.from_numpy(np.array(state["cuda_rng"], np.uint8)), self.device)

    def portable_state(self) -> dict[str, np.ndarray]:
        from chainrule.torch_ref import copy_from_torch

        if self._twin is None:
            return self.model_state()
        copy_from_torch(self.model, self._twin)
        return self._twin.state_dict()

    def save_model(self, path: str | Path) -> None:
        from chainrule.nn.serialization import save
        from chainrule.torch_ref import copy_from_torch

        if self._twin is None:
            from chainrule.torch_ref.serialization import save_torch_model

            save_torch_model(self.model, self.spec, path)
            return
        copy_from_torch(self.model, self._twin)
        save(self._twin, path)

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def describe(self) -> str:
        return (
            f"torch {torch.__version__.split('+')[0]} {self.device.type} {self.cfg.precision} "
            f"{self.cfg.dtype}, {torch.get_num_threads()} threads"
        )
