"""The engine registry (backend name -> "module:Class", without importing any engine) and the
optimizer registry (name -> its hyperparameters).

`chainrule.train.config` takes its backend list from here (so `chainrule --help` lists every
engine and starts without NumPy or torch) and asks the engine a config names for its own rules
(`check_config`); `chainrule.train.engine` imports the class a run asks for. A new engine is its
module plus one line below, or `register_engine` from outside the package (a test, a plug-in).
"""

from __future__ import annotations

import importlib
from typing import Any

ENGINES: dict[str, str] = {
    "numpy": "chainrule.train.numpy_engine:NumpyEngine",
    "torch": "chainrule.train.torch_engine:TorchEngine",
}


# optimizer name -> the keyword arguments it takes besides lr and weight_decay (by the names
# chainrule.optim and torch.optim share; `builders.optimizer_kwargs` fills them from the config). The
# config offers these names; each engine says which it builds (`check_config`). "muon" is built by
# the torch engine (`build_muon_chain`, not from these keyword arguments).
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("betas",),
    "adamw": ("betas",),
    "rmsprop": ("momentum",),
    "muon": ("momentum", "nesterov"),  # of its SGD part (head and biases); Muon's own are muon_*
}


def register_engine(name: str, target: str) -> None:
    """Make `backend = name` train with the class `target` ("module:Class", imported when used)."""
    module, _, cls = target.partition(":")
    if not module or not cls.isidentifier():
        raise ValueError(f"register_engine({name!r}, {target!r}): the target must be 'module:Class'")
    ENGINES[name] = target


def load_engine(name: str) -> Any:
    """The class the registered engine `name` names, its module imported now (`KeyError` for an
    unknown name, `ImportError` when the engine's package is missing)."""
    module, _, cls = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), cls)
