"""Save and load a model (architecture + weights + buffers) as one `.npz` file.

The archive holds one array per parameter and buffer, named as in `Module.state_dict()`
("0.weight", "1.running_mean", ...), plus the entry `__chainrule__`: a JSON string

    {"format": "chainrule.model", "version": 1, "training": true,
     "model": {"type": "MLP", "config": {...}}}

where a plain `Sequential` is stored as {"type": "Sequential", "children": [spec, ...]} and every
other module as its registered type name and `config()` (the constructor arguments), with the
parameter dtype added for constructors that take `dtype`. Nothing is pickled: loading uses
`allow_pickle=False`, so a model file cannot run code. Writes are atomic (temporary file in the
same folder, then `os.replace`): an interrupted save never leaves a half-written model behind.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any

import numpy as np

from chainrule._io import atomic_write

from .activations import ELU, LeakyReLU, Sigmoid, Softmax, Tanh
from .batchnorm import BatchNorm1d
from .dropout import Dropout
from .layers import Linear, ReLU
from .mlp import MLP
from .module import Module, Sequential

FORMAT = "chainrule.model"
VERSION = 1
META_KEY = "__chainrule__"

MODULES: dict[str, type[Module]] = {}


def register(cls: type[Module]) -> type[Module]:
    """Make a Module subclass saveable (by its class name). Usable as a decorator.

    The class must rebuild itself from `cls(**module.config())`.
    """
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register: expected a Module subclass, got {cls!r}")
    MODULES[cls.__name__] = cls
    return cls


for _cls in (Linear, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softmax, Dropout, BatchNorm1d, Sequential, MLP):
    register(_cls)


# --------------------------------------------------------------------------------------------------
# architecture spec


def architecture(module: Module) -> dict[str, Any]:
    """The JSON-able spec that `build` turns back into an (untrained) module."""
    cls = type(module)
    name = cls.__name__
    if MODULES.get(name) is not cls:
        raise ValueError(
            f"cannot save a {name}: its type is not registered "
            f"(call chainrule.nn.serialization.register({name}) first)"
        )
    if cls is Sequential:
        return {"type": name, "children": [architecture(m) for m in module.children()]}
    config = dict(module.config())
    if "dtype" in inspect.signature(cls.__init__).parameters and "dtype" not in config:
        config["dtype"] = np.dtype(module.dtype).name
    return {"type": name, "config": config}


def build(spec: dict[str, Any]) -> Module:
    """Construct the module described by `spec` (weights freshly initialized)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a module spec must be an object with a 'type', got {spec!r}")
    name = spec["type"]
    cls = MODULES.get(name)
    if cls is None:
        raise ValueError(f"unknown module type {name!r} (known: {', '.join(sorted(MODULES))})")
    if cls is Sequential:
        children = spec.get("children")
        if not isinstance(children, list):
            raise ValueError("a Sequential spec needs a 'children' list")
        return Sequential(*[build(c) for c in children])
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"the config of {name} must be an object, got {config!r}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot build {name} from config {config}: {e}") from e


# --------------------------------------------------------------------------------------------------
# save / load


def save(model: Module, path: str | os.PathLike[str]) -> None:
    """Write `model` (architecture, parameters, buffers, train/eval mode) to `path` atomically.

    The file name is used as given (no ".npz" is appended).
    """
    if not isinstance(model, Module):
        raise TypeError(f"save: expected a Module, got {type(model).__name__}")
    path = os.fspath(path)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "training": bool(model.training),
        "model": architecture(model),
    }
    arrays: dict[str, np.ndarray] = {META_KEY: np.array(json.dumps(meta))}
    arrays.update(model.state_dict())
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: folder {folder} does not exist (writing {path})")
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike[str]) -> Module:
    """Read a model written by `save`.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a readable `.npz` archive (damaged, truncated, another format),
            has no chainrule architecture entry, or its weights do not fit its architecture
            (names or shapes); the message names the file and the problem.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a model file")
    if not is_npz(path):  # else NumPy takes the bytes for a pickle and suggests allow_pickle=True
        raise ValueError(
            f"{path}: not a readable model file (not an .npz archive); "
            "is it truncated, damaged, or not written by chainrule.nn.save?"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError (pickled/unknown data), OSError ...
        raise ValueError(
            f"{path}: not a readable model file ({type(e).__name__}: {e}); "
            "is it truncated, damaged, or not written by chainrule.nn.save?"
        ) from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a chainrule model file (a single .npy array, not an .npz archive)")
    try:
        with archive:
            arrays = {k: archive[k] for k in archive.files}  # reads (and CRC-checks) every entry
    except Exception as e:  # zipfile.BadZipFile (bad CRC), zlib.error, EOFError, ValueError ...
        raise ValueError(
            f"{path}: damaged model file, an entry cannot be read ({type(e).__name__}: {e})"
        ) from e

    raw = arrays.pop(META_KEY, None)
    if raw is None:
        raise ValueError(f"{path}: not a chainrule model file (no {META_KEY!r} architecture entry)")
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: the architecture entry is not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else meta
        raise ValueError(f"{path}: not a chainrule model file (format {fmt!r}, expected {FORMAT!r})")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        version = meta.get("version")
        raise ValueError(
            f"{path}: model format version {version!r} is not one this chainrule reads (<= {VERSION})"
        )
    try:
        model = build(meta["model"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: invalid architecture: {e}") from e

    targets: dict[str, np.ndarray] = {name: p.data for name, p in model.named_parameters()}
    targets.update(dict(model.named_buffers()))
    missing = sorted(set(targets) - set(arrays))
    unexpected = sorted(set(arrays) - set(targets))
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit the architecture {meta['model'].get('type')}: "
            f"missing {missing}, unexpected {unexpected}"
        )
    for name, dst in targets.items():
        src = arrays[name]
        if src.shape != dst.shape:
            raise ValueError(
                f"{path}: entry {name!r} has shape {src.shape}, the architecture expects {dst.shape}"
            )
        if src.dtype.kind != dst.dtype.kind:
            raise ValueError(
                f"{path}: entry {name!r} has dtype {src.dtype}, the architecture expects {dst.dtype}"
            )
        dst[...] = src  # in place (dtype preserved by the architecture's config)
    model.train(bool(meta.get("training", True)))
    return model


def is_npz(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts as NumPy's files do: a zip archive (.npz) or an .npy array."""
    with open(path, "rb") as f:
        head = f.read(6)
    return head.startswith(b"PK\x03\x04") or head == b"\x93NUMPY"


def file_format(path: str | os.PathLike[str]) -> str | None:
    """The `format` named in a chainrule model file (reading only its JSON entry): "chainrule.model"
    for MLPs, "chainrule.torch-model" for torch image models; None if the file is not readable."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            meta = json.loads(str(z[META_KEY][()]))
    except Exception:
        return None
    return meta.get("format") if isinstance(meta, dict) else None
