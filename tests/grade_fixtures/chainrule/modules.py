"""A student's modules written against chainrule.nn: subclasses with their own math (numpy), so
that a planted bug changes only the class it is in."""

import numpy as np

from chainrule import nn
from chainrule.nn import functional as F


class Linear(nn.Linear):
    def forward(self, x):
        self._x = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, grad_out, input_grad=True):
        self.weight.grad = grad_out.T @ self._x
        self.bias.grad = grad_out.sum(axis=0)
        return grad_out @ self.weight.data


class ReLU(nn.ReLU):
    def forward(self, x):
        self._x = x
        return np.maximum(x, 0)

    def backward(self, grad_out, input_grad=True):
        return grad_out * (self._x > 0)


class Softmax(nn.Softmax):
    def _fwd(self, x, out):
        return F.softmax(x, out=out)


class SoftmaxCrossEntropy(nn.SoftmaxCrossEntropy):
    pass
