"""CIFAR-style convolutional networks for the torch engine: the seeds' VGG and a fast CPU network.

- `SeedVGG`: the VGG-style network of the seeds' assignment (Table 1), PyTorch default init.
- `FastNet`: a small VGG-ish network for a CPU without a GPU, after the ideas of the public
  CIFAR-10 speed runs (a 2x2 stem convolution initialized by patch whitening, max-pool before
  BatchNorm, BatchNorm with a frozen unit scale, identity-initialized convolutions, a scaled
  linear head, test-time flip/translate averaging). `init_whitening` sets the stem from a sample
  of training images; `param_groups` gives the optimizer groups the recipe uses.
- `build_cnn(name, in_shape, num_classes, seed)`: the factory the engine calls.
- `count_flops(model, in_shape)`: forward FLOPs per image (2 x the multiply-adds of every
  convolution and linear layer, from the module shapes).

The networks take float (B, C, H, W) batches, already normalized per channel; they work in either
memory layout (`model.to(memory_format=torch.channels_last)` with channels-last inputs is faster on
CPU). Only modules that use torch import this file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chainrule._io import did_you_mean

from .catalog import NETWORKS

__all__ = [
    "CNN_NAMES",
    "FastNet",
    "LookaheadEMA",
    "SeedVGG",
    "build_cnn",
    "count_flops",
    "init_whitening",
    "param_groups",
    "tta_logits",
]


# ==================================================================================================
# the seeds' VGG
# ==================================================================================================


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (stride 1, padding 1) -> BatchNorm2d -> ReLU, as one row of Table 1.

    Shape: (B, in_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)


def _vgg_pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class SeedVGG(nn.Module):
    """The seeds' VGG-style network (the assignment's Table 1), with PyTorch's default init.

    conv1 3->64, pool1, conv2 64->128, pool2, conv3_a 128->256, conv3_b 256->256, pool3,
    conv4_a 256->512, conv4_b 512->512, pool4, conv5_a 512->512, conv5_b 512->512, pool5,
    linear 512->num_classes. Every conv is a `ConvBNReLU` (3x3, stride 1, padding 1, bias, then
    BatchNorm2d and ReLU); every pool is a 3x3 max-pool with stride 2 and padding 1, which maps a
    side of n pixels to ceil(n / 2), so 32x32 (and any side from 17 to 32) ends at 1x1 x 512.

    Args:
        num_classes: outputs of the last linear layer.
        in_channels: image channels (3 for CIFAR-10, 1 for MNIST).

    Shape: (B, in_channels, H, W) float with 17 <= H, W <= 32 -> (B, num_classes) logits.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, 64)
        self.pool1 = _vgg_pool()
        self.conv2 = ConvBNReLU(64, 128)
        self.pool2 = _vgg_pool()
        self.conv3_a = ConvBNReLU(128, 256)
        self.conv3_b = ConvBNReLU(256, 256)
        self.pool3 = _vgg_pool()
        self.conv4_a = ConvBNReLU(256, 512)
        self.conv4_b = ConvBNReLU(512, 512)
        self.pool4 = _vgg_pool()
        self.conv5_a = ConvBNReLU(512, 512)
        self.conv5_b = ConvBNReLU(512, 512)
        self.pool5 = _vgg_pool()
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3_b(self.conv3_a(x)))
        x = self.pool4(self.conv4_b(self.conv4_a(x)))
        x = self.pool5(self.conv5_b(self.conv5_a(x)))  # (B, 512, 1, 1)
        return self.linear(torch.flatten(x, 1))  # (B, 512) @ (512, classes)


# ==================================================================================================
# the fast network
# ==================================================================================================


class ConvGroup(nn.Module):
    """conv 3x3 -> max-pool 2x2 -> BN -> GELU -> conv 3x3 -> BN -> GELU (no conv biases).

    Pooling before the first BatchNorm makes the normalization and activation 4x cheaper. The
    BatchNorm scales are frozen at 1 (only the shifts learn): with a scaled head this trains as
    well and leaves less to tune. Both convolutions start from PyTorch's default init with their
    first `in_channels` filters replaced by identities (Dirac), so a fresh group passes its input
    through.

    Shape: (B, in_channels, H, W) -> (B, out_channels, H // 2, W // 2).
    """

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _frozen_scale_bn(out_channels, bn_momentum)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _frozen_scale_bn(out_channels, bn_momentum)
        self.act = nn.GELU()
        for conv in (self.conv1, self.conv2):
            w = conv.weight.data
            nn.init.dirac_(w[: min(w.shape[0], w.shape[1])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


def _frozen_scale_bn(channels: int, momentum: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, momentum=momentum, eps=1e-12)
    bn.weight.requires_grad_(False)
    return bn


class FastNet(nn.Module):
    """A fast CIFAR-10 network for a CPU: whitened 2x2 stem, three `ConvGroup`s, max-pool, linear.

    stem: Conv2d(C, 2 * C * k * k, kernel k, no padding, bias) whose weights are set once by
    `init_whitening` and then frozen (its bias learns); GELU; groups of `widths[0..2]` channels,
    each halving the side; global max-pool; Linear(widths[-1], num_classes, no bias) whose logits
    are multiplied by `logit_scale` (a small scale keeps early logits small, so a large learning
    rate is stable).

    Args:
        num_classes: outputs.
        in_channels: image channels.
        widths: channels of the conv groups (any number of groups, each halves the side).
        stem_kernel: side of the whitening patches.
        bn_momentum: PyTorch BatchNorm momentum (weight of the new batch in the running stats).
        logit_scale: factor on the head's output.

    Shape: (B, in_channels, H, W) float, (H - stem_kernel + 1) // 2**len(widths) >= 1
    -> (B, num_classes) logits.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 256, 256),
        stem_kernel: int = 2,
        bn_momentum: float = 0.4,
        logit_scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"FastNet: widths must be positive channel counts, got {widths}")
        if stem_kernel < 1:
            raise ValueError(f"FastNet: stem_kernel must be >= 1, got {stem_kernel}")
        self.widths = widths
        self.stem_kernel = stem_kernel
        self.logit_scale = float(logit_scale)
        patch = in_channels * stem_kernel * stem_kernel
        self.stem = nn.Conv2d(in_channels, 2 * patch, stem_kernel, padding=0, bias=True)
        self.stem.weight.requires_grad_(False)  # set by init_whitening, never trained
        self.stem_act = nn.GELU()
        groups, prev = [], 2 * patch
        for w in widths:
            groups.append(ConvGroup(prev, w, bn_momentum))
            prev = w
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(prev, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.stem_act(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)  # (B, widths[-1])
        return self.head(x) * self.logit_scale  # (B, widths[-1]) @ (widths[-1], classes)


@torch.no_grad()
def init_whitening(
    model: FastNet,
    x_uint8_sample: np.ndarray | torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    eps: float = 5e-4,
) -> None:
    """Set the stem of `model` so that its outputs on the sample are white (zero mean, identity
    covariance), in place.

    The patches (C x k x k values) of the normalized sample have covariance V diag(lam) V^T. The
    stem's first half of filters is V^T / sqrt(lam + eps) (one filter per eigenvector), the second
    half their negatives (so the GELU after it keeps both signs); the bias removes the patch mean.
    The stem weights stay frozen afterwards; the bias keeps learning.

    Args:
        model: a `FastNet`.
        x_uint8_sample: training images as the engine sees them before normalization, uint8
            (N, C, H, W) in [0, 255] (a few thousand images are plenty).
        mean, std: the per-channel normalization the engine applies (on the [0, 1] scale).
        eps: added to the eigenvalues (keeps near-constant patch directions from blowing up).
    """
    if not isinstance(model, FastNet):
        raise TypeError(f"init_whitening: expected a FastNet, got {type(model).__name__}")
    x = torch.as_tensor(np.asarray(x_uint8_sample) if not torch.is_tensor(x_uint8_sample) else x_uint8_sample)
    c, k = model.stem.in_channels, model.stem_kernel
    if x.ndim != 4 or x.shape[1] != c or x.shape[2] < k or x.shape[3] < k:
        raise ValueError(
            f"init_whitening: expected uint8 (N, {c}, H>={k}, W>={k}) images, got {tuple(x.shape)}"
        )
    if x.dtype != torch.uint8:
        raise ValueError(f"init_whitening: expected uint8 images in [0, 255], got dtype {x.dtype}")
    if len(mean) != c or len(std) != c:
        raise ValueError(f"init_whitening: mean and std need {c} values, got {len(mean)} and {len(std)}")
    m = torch.tensor(mean, dtype=torch.float64).view(1, c, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, c, 1, 1)
    xf = (x.to(torch.float64) / 255.0 - m) / s
    patches = F.unfold(xf, k).transpose(1, 2).reshape(-1, c * k * k)  # (N * L, C * k * k), (c, dy, dx) order
    if patches.shape[0] < 2 * patches.shape[1]:
        raise ValueError(
            f"init_whitening: {patches.shape[0]} patches are too few for {patches.shape[1]}-value patches"
        )
    mu = patches.mean(0)
    centered = patches - mu
    cov = centered.T @ centered / (len(patches) - 1)  # (d, d)
    lam, vecs = torch.linalg.eigh(cov)  # ascending; columns are eigenvectors
    w = vecs.T / torch.sqrt(lam.clamp_min(0) + eps)[:, None]  # (d, d): row i = filter i
    w_all = torch.cat([w, -w]).reshape(2 * c * k * k, c, k, k)
    b_all = -(w_all.reshape(2 * c * k * k, -1) @ mu)
    model.stem.weight.copy_(w_all.to(model.stem.weight.dtype))
    model.stem.bias.copy_(b_all.to(model.stem.bias.dtype))


def param_groups(model: nn.Module, lr: float, weight_decay: float, bias_lr_scale: float = 64.0) -> list[dict]:
    """Optimizer parameter groups of the fast recipe (`torch.optim.SGD(param_groups(...), ...)`).

    - "weights": every trainable parameter except the BatchNorm shifts: `lr`, `weight_decay`.
    - "bn_bias": BatchNorm shifts: `lr * bias_lr_scale`, `weight_decay / bias_lr_scale` (so that
      the per-step decay, lr x weight_decay, is the same for both groups).

    Each group carries `lr_scale` (its lr relative to the base lr): a schedule sets
    `group["lr"] = base_lr * group["lr_scale"]`. Frozen parameters (the stem's weight, the BN
    scales) are left out.
    """
    bn_bias, weights = [], []
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_bn_bias = isinstance(module, nn.modules.batchnorm._BatchNorm) and pname == "bias"
            (bn_bias if is_bn_bias else weights).append(p)
    groups = [dict(name="weights", params=weights, lr=lr, weight_decay=weight_decay, lr_scale=1.0)]
    if bn_bias:
        groups.append(
            dict(
                name="bn_bias",
                params=bn_bias,
                lr=lr * bias_lr_scale,
                weight_decay=weight_decay / bias_lr_scale,
                lr_scale=bias_lr_scale,
            )
        )
    return groups


@torch.no_grad()
def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 2) -> torch.Tensor:
    """Test-time augmentation: logits averaged over views of the batch (model in eval mode).

    level 0: the images; 1: mean of the images and their mirror images; 2: 0.5 x level 1 plus
    0.25 x each of level 1 on the images shifted one pixel up-left and down-right (edges padded by
    reflection).

    Shape: (B, C, H, W) normalized float -> (B, num_classes).
    """
    if level not in (0, 1, 2):
        raise ValueError(f"tta_logits: level must be 0, 1 or 2, got {level}")
    if level == 0:
        return model(x)

    def flip_mean(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model(v) + model(torch.flip(v, dims=(3,))))

    out = flip_mean(x)
    if level == 1:
        return out
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[2], x.shape[3]
    up_left, down_right = padded[:, :, 0:h, 0:w], padded[:, :, 2 : h + 2, 2 : w + 2]
    return (
        0.5 * out
        + 0.25 * flip_mean(up_left.contiguous(memory_format=_layout(x)))
        + 0.25 * flip_mean(down_right.contiguous(memory_format=_layout(x)))
    )


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format of `x` (so that shifted views keep the layout the model expects)."""
    if x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class LookaheadEMA:
    """Lookahead with an exponential moving average of the weights (optional, fast recipe).

    Every `every` steps: `slow = decay * slow + (1 - decay) * fast; fast <- slow` over all
    floating-point parameters and buffers (BatchNorm running statistics included). `finish`
    copies the slow weights into the model at the end of training. The fast recipe uses
    `decay = 0.95**5 * (step / total_steps)**3` after optimizer steps 5, 10, 15, ... (every
    `--lookahead-every` steps): little averaging early, heavy averaging at the end.
    """

    def __init__(self, model: nn.Module) -> None:
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for k, v in model.state_dict().items():
            if k in self.slow:
                self.slow[k].lerp_(v, 1.0 - decay)
                v.copy_(self.slow[k])

    @torch.no_grad()
    def finish(self, model: nn.Module) -> None:
        self.update(model, decay=1.0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The slow weights (a checkpoint needs them for a bit-identical resume)."""
        return {k: v.clone() for k, v in self.slow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.slow.keys():
            missing, extra = sorted(self.slow.keys() - state.keys()), sorted(state.keys() - self.slow.keys())
            raise ValueError(f"LookaheadEMA.load_state_dict: missing {missing}, unexpected {extra}")
        for k, v in state.items():
            self.slow[k].copy_(v)


# ==================================================================================================
# factory and FLOPs
# ==================================================================================================

# name -> (class, default keyword arguments), from the torch-free catalog.NETWORKS
_NETS: dict[str, tuple[type[nn.Module], dict]] = {
    name: (globals()[cls], dict(opts)) for name, (cls, opts) in NETWORKS.items()
}
CNN_NAMES: tuple[str, ...] = tuple(_NETS)


def build_cnn(name: str, in_shape: tuple[int, int, int], num_classes: int, seed: int, **opts) -> nn.Module:
    """Build a named image network with weights drawn after `torch.manual_seed(seed)`.

    Args:
        name: "vgg" (`SeedVGG`), or a `FastNet`: "fastnet" (widths 64-256-256), "fastnet-m"
            (64-128-256) or "fastnet-s" (32-64-128).
        in_shape: (C, H, W) of one image.
        num_classes: outputs.
        seed: the same seed gives the same weights.
        **opts: keyword arguments of the class (e.g. `widths=(96, 384, 384)` for FastNet).

    Raises:
        ValueError: unknown name (with close matches), an image shape the network cannot take,
            or options the network does not have.
    """
    if name not in _NETS:
        hint = did_you_mean(name, CNN_NAMES, n=2)
        raise ValueError(f"unknown CNN {name!r}{hint}; choose from {', '.join(CNN_NAMES)}")
    if len(in_shape) != 3 or any(int(s) < 1 for s in in_shape):
        raise ValueError(f"{name}: in_shape must be (C, H, W) with positive sides, got {tuple(in_shape)}")
    c, h, w = (int(s) for s in in_shape)
    if num_classes < 1:
        raise ValueError(f"{name}: num_classes must be >= 1, got {num_classes}")
    cls, defaults = _NETS[name]
    kwargs = {**defaults, **opts}
    if cls is SeedVGG:
        if opts:
            raise ValueError(f"vgg: takes no options (the network is fixed by Table 1), got {sorted(opts)}")
        if not (17 <= h <= 32 and 17 <= w <= 32):
            raise ValueError(
                f"vgg: images of {h}x{w} do not end at 1x1 after its five stride-2 max-pools "
                "(linear 512->classes needs 17..32 pixels a side)"
            )
    else:
        k = int(kwargs.get("stem_kernel", 2))
        depth = len(tuple(kwargs.get("widths", (64, 256, 256))))
        if min(h, w) - k + 1 < 2**depth:
            raise ValueError(
                f"{name}: images of {h}x{w} are too small for a {k}x{k} stem and {depth} halvings "
                f"(need at least {2**depth + k - 1} pixels a side)"
            )
    torch.manual_seed(seed)
    try:
        return cls(num_classes=num_classes, in_channels=c, **kwargs)
    except TypeError as e:
        raise ValueError(f"{name}: bad option ({e})") from None


def count_flops(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Forward FLOPs of one image: 2 x the multiply-adds of every Conv2d and Linear.

    Counted from the module shapes and the output sizes seen in one forward pass of a zero image
    (eval mode, no gradients); BatchNorm, activations, pooling and biases are not counted. A
    training step costs about 3x this (forward, plus backward to the inputs and to the weights).
    """
    macs = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            per_out = (module.in_channels // module.groups) * math.prod(module.kernel_size)
            macs += per_out * output.numel()  # output: (1, out_channels, H', W')
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    p = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *in_shape), dtype=p.dtype, device=p.device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return 2 * macs
