"""chainrule's own modules, as a submission of the `chainrule` interface (`--reference`)."""

from chainrule.nn import Linear, ReLU, Softmax, SoftmaxCrossEntropy

__all__ = ["Linear", "ReLU", "Softmax", "SoftmaxCrossEntropy"]
