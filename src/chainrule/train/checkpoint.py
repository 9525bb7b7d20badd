"""Checkpoints: everything a run needs to resume bit-identically, in one `.npz` file.

The file holds arrays (model weights, optimizer buffers, best weights, per-step history) plus one
JSON document (`__meta__`) for the rest (step, epoch position, random-generator states, schedule
state, evaluation records). Nested states are stored by `pack`: each array is replaced by a
reference to an npz entry, so no pickle is ever needed (`np.load(..., allow_pickle=False)`).
The file is written atomically: a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_write
from chainrule.nn.serialization import is_npz

FORMAT = "chainrule-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged or from another model."""


def pack(obj: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """A JSON-able copy of `obj`, with every ndarray moved into `arrays` under a key from `prefix`."""
    if isinstance(obj, np.ndarray):
        key = f"{prefix}#{len(arrays)}"
        arrays[key] = obj
        return {"__nd__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: pack(v, arrays, f"{prefix}/{k}") for k, v in obj.items()}
        return {
            "__items__": [[pack(k, arrays, prefix), pack(v, arrays, f"{prefix}/{k}")] for k, v in obj.items()]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [pack(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [pack(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint (at {prefix})")


def unpack(obj: Any, arrays: Any) -> Any:
    """Inverse of `pack`."""
    if isinstance(obj, dict):
        if set(obj) == {"__nd__"}:
            return np.array(arrays[obj["__nd__"]])
        if set(obj) == {"__items__"}:
            return {unpack(k, arrays): unpack(v, arrays) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(unpack(v, arrays) for v in obj["__tuple__"])
        return {k: unpack(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, arrays) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` (nested dicts/lists of scalars, strings and arrays) atomically to `path`."""
    arrays: dict[str, np.ndarray] = {}
    meta = pack({"format": FORMAT, **state}, arrays, "s")
    payload = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    return atomic_write(path, lambda f: np.savez(f, __meta__=payload, **arrays))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a damaged file gives `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        if not is_npz(path):  # else NumPy takes the bytes for a pickle and suggests allow_pickle=True
            raise CheckpointError(f"checkpoint {path} is damaged or unreadable: not an .npz archive")
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # a single .npy array has no `with`
            raise CheckpointError(
                f"checkpoint {path} is not a chainrule checkpoint: a .npy array, not an .npz"
            )
        with archive as z:
            meta = json.loads(bytes(z["__meta__"]).decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not a chainrule checkpoint (format {meta.get('format')!r})")
            return unpack(meta, z)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} is damaged or unreadable: {e}") from None


def generator_states(model: Any) -> list[dict[str, Any]]:
    """Bit-generator states of every `numpy.random.Generator` held by a module (e.g. Dropout),
    in module order, so that a resumed run draws the same masks."""
    return [g.bit_generator.state for g in _generators(model)]


def set_generator_states(model: Any, states: list[dict[str, Any]]) -> None:
    gens = _generators(model)
    if len(gens) != len(states):
        raise CheckpointError(f"checkpoint has {len(states)} random generators, the model has {len(gens)}")
    for g, s in zip(gens, states, strict=True):
        g.bit_generator.state = s


def _generators(module: Any) -> list[np.random.Generator]:
    out = [v for _, v in sorted(vars(module).items()) if isinstance(v, np.random.Generator)]
    for child in module.children():
        out.extend(_generators(child))
    return out
