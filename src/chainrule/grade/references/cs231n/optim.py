"""chainrule's reference in the layout of CS231n's `optim.py`: each rule is a `chainrule.optim`
optimizer (torch.optim's update rules, which are CS231n's) kept in the config dict between calls."""

import numpy as np

from chainrule.nn.module import Param
from chainrule.optim import SGD, Adam, RMSprop


def _step(w, dw, config, make):
    """One step of the optimizer that `make(param)` builds, created on the first call."""
    if "_optimizer" not in config:
        param = Param(np.array(w, dtype=np.float64, copy=True))
        config["_param"], config["_optimizer"] = param, make(param)
    param = config["_param"]
    param.data[...] = w
    param.grad[...] = dw
    config["_optimizer"].step()
    return param.data.copy(), config


def sgd_momentum(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    return _step(w, dw, config, lambda p: SGD([p], lr=config["learning_rate"], momentum=config["momentum"]))


def rmsprop(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    return _step(
        w,
        dw,
        config,
        lambda p: RMSprop([p], lr=config["learning_rate"], alpha=config["decay_rate"], eps=config["epsilon"]),
    )


def adam(w, dw, config=None):
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    return _step(
        w,
        dw,
        config,
        lambda p: Adam(
            [p], lr=config["learning_rate"], betas=(config["beta1"], config["beta2"]), eps=config["epsilon"]
        ),
    )
