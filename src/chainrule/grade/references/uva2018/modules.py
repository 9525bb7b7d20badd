"""chainrule's reference in the layout of UvA's 2018 `modules.py` (a submission that scores full
marks; `chainrule grade --reference --interface uva2018`). Each class is a thin adapter: the math
is `chainrule.nn.functional`."""

import numpy as np

from chainrule.nn import functional as F


class LinearModule:
    """y = x W^T + b, W (out, in); params/grads dicts as in the handout."""

    def __init__(self, in_features, out_features):
        self.params = {
            "weight": np.random.normal(0.0, 1e-4, (out_features, in_features)),  # noqa: NPY002 - as the handout
            "bias": np.zeros(out_features),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = x
        return F.linear_forward(x, self.params["weight"], self.params["bias"])

    def backward(self, dout):
        self.grads = {k: np.empty_like(v) for k, v in self.params.items()}
        return F.linear_backward(
            dout, self.x, self.params["weight"], self.grads["weight"], self.grads["bias"]
        )


class ReLUModule:
    def forward(self, x):
        self.y = F.relu_forward(x)
        return self.y

    def backward(self, dout):
        return F.relu_backward(dout, self.y)


class SoftMaxModule:
    def forward(self, x):
        self.y = F.softmax(x)
        return self.y

    def backward(self, dout):
        return F.softmax_backward(dout, self.y)


class CrossEntropyModule:
    """Mean cross-entropy of one-hot targets y under probabilities x."""

    def forward(self, x, y):
        return F.cross_entropy_forward(x, y)

    def backward(self, x, y):
        return F.cross_entropy_backward(x, y)
