"""chainrule: backpropagation you can read and trust.

`import chainrule` loads only NumPy; PyTorch is used only by `chainrule.torch_ref` and the tests.
"""

__version__ = "0.1.0"
