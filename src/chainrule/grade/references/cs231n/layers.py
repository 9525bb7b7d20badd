"""chainrule's reference in the layout of CS231n's `layers.py` (full marks under `chainrule grade
--reference --interface cs231n`): thin adapters around `chainrule.nn.functional`."""

import numpy as np

from chainrule.nn import functional as F


def affine_forward(x, w, b):
    """x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M); cache (x, w, b) as in the handout."""
    out = F.linear_forward(x.reshape(x.shape[0], -1), w.T, b)  # (N, D) @ (D, M)
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    gw_t = np.empty((w.shape[1], w.shape[0]))  # (M, D): chainrule keeps W as (out, in)
    db = np.empty(w.shape[1])
    dx = F.linear_backward(dout, x.reshape(x.shape[0], -1), w.T, gw_t, db)
    return dx.reshape(x.shape), gw_t.T, db


def relu_forward(x):
    return F.relu_forward(x), x


def relu_backward(dout, cache):
    return F.relu_backward(dout, F.relu_forward(cache))


def softmax_loss(x, y):
    loss, p = F.softmax_cross_entropy_forward(x, y)
    return loss, F.softmax_cross_entropy_backward(p, y)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Train: batch statistics, running = momentum * running + (1 - momentum) * batch (biased var).
    Test: the running statistics."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    d = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))
    if mode == "train":
        out, xhat, inv_std, mean, var = F.batchnorm_forward(x, gamma, beta, eps)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
        return out, (xhat, inv_std, gamma)
    if mode == "test":
        inv_std = 1.0 / np.sqrt(running_var + eps)
        return gamma * ((x - running_mean) * inv_std) + beta, None
    raise ValueError(f'Invalid forward batchnorm mode "{mode}"')


def batchnorm_backward(dout, cache):
    xhat, inv_std, gamma = cache
    dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
    dx = F.batchnorm_backward(dout, xhat, inv_std, gamma, dgamma, dbeta)
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    """Inverted dropout; p is the probability of keeping a unit (CS231n's convention)."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])  # noqa: NPY002 - the handout's seeding
    if mode == "train":
        rng = np.random.default_rng(np.random.randint(2**31))  # noqa: NPY002
        mask = F.dropout_mask(rng, x.shape, 1.0 - p, x.dtype)
        return x * mask, (dropout_param, mask)
    return x, (dropout_param, None)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout
