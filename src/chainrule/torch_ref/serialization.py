"""Save and load torch image models (CNNs) as one `.npz` file, like `chainrule.nn.save` does for MLPs.

The archive holds one array per state-dict entry plus `__chainrule__`, a JSON string

    {"format": "chainrule.torch-model", "version": 1,
     "model": {"name": "vgg", "in_shape": [3, 32, 32], "num_classes": 10, "opts": {...}}}

from which `chainrule.torch_ref.cnn.build_cnn` rebuilds the network. Nothing is pickled (loading
uses `allow_pickle=False`); writes are atomic. MLPs trained by the torch engine are saved in
chainrule's own MLP format instead, so both engines read them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from chainrule._io import atomic_write
from chainrule.nn.serialization import META_KEY

FORMAT = "chainrule.torch-model"
VERSION = 1


def save_torch_model(model: nn.Module, spec: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `model`'s state and the `build_cnn` arguments `spec` (name, in_shape, num_classes, opts)."""
    meta = {"format": FORMAT, "version": VERSION, "model": spec}
    arrays: dict[str, np.ndarray] = {META_KEY: np.array(json.dumps(meta))}
    for k, v in model.state_dict().items():
        t = v.detach().cpu()
        arrays[k] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    atomic_write(os.fspath(path), lambda f: np.savez(f, **arrays))


def load_torch_model(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The model saved by `save_torch_model` (in eval mode) and its spec; errors name the file."""
    from .cnn import build_cnn

    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {path} does not exist") from None
    except Exception as e:
        raise ValueError(f"{path}: not a readable model file ({type(e).__name__}: {e})") from e
    try:
        meta = json.loads(str(arrays.pop(META_KEY)[()]))
        spec = meta["model"]
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        model = build_cnn(
            spec["name"], tuple(spec["in_shape"]), int(spec["num_classes"]), seed=0, **spec.get("opts", {})
        )
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a chainrule torch model file ({e})") from e
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(arrays)), sorted(set(arrays) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit {spec['name']}: missing {missing}, unexpected {unexpected}"
        )
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(arrays[k])) for k in own})
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit {spec['name']}: {e}") from None
    return model.eval(), spec
