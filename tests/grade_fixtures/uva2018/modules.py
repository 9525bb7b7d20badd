"""A correct student solution of UvA 2018's modules.py, written the way students write it (plain
NumPy, no chainrule). tests/test_grade_bugs.py plants one bug at a time into a copy of it."""

import numpy as np


class LinearModule:
    def __init__(self, in_features, out_features):
        self.params = {
            "weight": np.random.normal(0, 0.0001, (out_features, in_features)),  # noqa: NPY002
            "bias": np.zeros(out_features),
        }
        self.grads = {"weight": np.zeros((out_features, in_features)), "bias": np.zeros(out_features)}

    def forward(self, x):
        self.x = x
        out = x @ self.params["weight"].T + self.params["bias"]
        return out

    def backward(self, dout):
        self.grads["weight"] = dout.T @ self.x
        self.grads["bias"] = dout.sum(axis=0)
        dx = dout @ self.params["weight"]
        return dx


class ReLUModule:
    def forward(self, x):
        self.x = x
        out = np.maximum(x, 0)
        return out

    def backward(self, dout):
        dx = dout * (self.x > 0)
        return dx


class SoftMaxModule:
    def forward(self, x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.out = e / e.sum(axis=1, keepdims=True)
        return self.out

    def backward(self, dout):
        y = self.out
        dx = y * (dout - (dout * y).sum(axis=1, keepdims=True))
        return dx


class CrossEntropyModule:
    def forward(self, x, y):
        picked = x[y > 0]
        out = -np.sum(y[y > 0] * np.log(picked)) / x.shape[0]
        return out

    def backward(self, x, y):
        dx = -y / x / x.shape[0]
        return dx
