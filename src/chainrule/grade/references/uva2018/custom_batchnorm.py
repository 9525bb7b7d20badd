"""chainrule's reference in the layout of UvA's 2018 `custom_batchnorm.py`: the classes of
`chainrule.torch_ref` (checked against torch.nn.BatchNorm1d) under the handout's names."""

from chainrule.torch_ref import BatchNormAutograd, BatchNormFunction, BatchNormManual


class CustomBatchNormAutograd(BatchNormAutograd):
    """Batch norm in torch operations; autograd differentiates it."""


CustomBatchNormManualFunction = BatchNormFunction  # forward(ctx, input, gamma, beta, eps=1e-5)


class CustomBatchNormManualModule(BatchNormManual):
    """The module around CustomBatchNormManualFunction."""
