"""chainrule: backpropagation you can read and trust.

`import chainrule` imports nothing else: `chainrule.fit`, `load_run`, `Run`, `History` and
`TrainConfig` are imported on first use, and PyTorch and matplotlib only by what needs them.
"""

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it, imported when the name is first used (keeps `import chainrule` light)
_LAZY = {
    "fit": "chainrule.api",
    "load_run": "chainrule.api",
    "Run": "chainrule.api",
    "History": "chainrule.api",
    "TrainConfig": "chainrule.train.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
