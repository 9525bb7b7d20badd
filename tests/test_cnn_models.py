"""The CNNs of chainrule.torch_ref.cnn: shapes, training on tiny synthetic images, seeding, whitening,
FLOP counting, optimizer groups, test-time augmentation and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from chainrule.torch_ref import (  # noqa: E402
    CNN_NAMES,
    FastNet,
    LookaheadEMA,
    SeedVGG,
    build_cnn,
    count_flops,
    init_whitening,
    param_groups,
    tta_logits,
)

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]


def _toy_images(n: int, side: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise plus a fixed random pattern per class: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 3, side, side, generator=g)
    y = torch.arange(n) % classes
    x = patterns[y] + 0.5 * torch.randn(n, 3, side, side, generator=g)
    return x, y


# -- shapes and structure ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CNN_NAMES)
def test_cifar_shapes(name: str) -> None:
    model = build_cnn(name, (3, 32, 32), 10, seed=0).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert out.dtype == torch.float32


def test_vgg_is_table_1() -> None:
    m = SeedVGG()
    convs = [(n, mod) for n, mod in m.named_modules() if isinstance(mod, nn.Conv2d)]
    assert [n for n, _ in convs] == [
        f"{b}.conv"
        for b in ("conv1", "conv2", "conv3_a", "conv3_b", "conv4_a", "conv4_b", "conv5_a", "conv5_b")
    ]
    assert [(c.in_channels, c.out_channels) for _, c in convs] == [
        (3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512),
    ]  # fmt: skip
    for _, c in convs:
        assert c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) and c.bias is not None
    for block in ("conv1", "conv3_b", "conv5_b"):
        assert isinstance(getattr(m, block).bn, nn.BatchNorm2d) and isinstance(
            getattr(m, block).relu, nn.ReLU
        )
    pools = [mod for n, mod in m.named_modules() if isinstance(mod, nn.MaxPool2d)]
    assert len(pools) == 5
    assert all((p.kernel_size, p.stride, p.padding) == (3, 2, 1) for p in pools)
    assert (m.linear.in_features, m.linear.out_features) == (512, 10)


def test_vgg_grayscale_28() -> None:
    """MNIST-sized input: 28 -> 14 -> 7 -> 4 -> 2 -> 1 through the five pools."""
    model = build_cnn("vgg", (1, 28, 28), 10, seed=0).eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_fastnet_options_and_small_images() -> None:
    model = build_cnn("fastnet", (3, 16, 16), 7, seed=0, widths=(8, 16, 24)).eval()
    assert model.widths == (8, 16, 24)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    assert not model.stem.weight.requires_grad  # the whitening filters are fixed
    assert all(not bn.weight.requires_grad for bn in model.modules() if isinstance(bn, nn.BatchNorm2d))


def test_channels_last_matches_contiguous() -> None:
    model = build_cnn("fastnet", (3, 16, 16), 10, seed=0, widths=(8, 16, 16)).eval()
    x = torch.randn(4, 3, 16, 16)
    ref = model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    out = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


# -- training ----------------------------------------------------------------------------------------


def _train(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int
) -> list:
    model.train()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_vgg_loss_falls_on_tiny_images() -> None:
    x, y = _toy_images(32, 17, 4)  # 17x17: the smallest side the five pools take to 1x1
    model = build_cnn("vgg", (3, 17, 17), 4, seed=0)
    losses = _train(model, torch.optim.Adam(model.parameters(), lr=1e-4), x, y, steps=8)
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", ["fastnet", "fastnet-s"])
def test_fastnet_loss_falls_on_tiny_images(name: str) -> None:
    x, y = _toy_images(64, 16, 4)
    model = build_cnn(name, (3, 16, 16), 4, seed=0)
    x_uint8 = ((x - x.min()) / (x.max() - x.min()) * 255).round().to(torch.uint8)
    init_whitening(model, x_uint8, mean=[0.5] * 3, std=[0.25] * 3)
    xn = (x_uint8.float() / 255 - 0.5) / 0.25
    opt = torch.optim.SGD(param_groups(model, lr=0.3, weight_decay=5e-4), momentum=0.85, nesterov=True)
    losses = _train(model, opt, xn, y, steps=12)
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


# -- seeding -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vgg", "fastnet-s"])
def test_same_seed_same_weights(name: str) -> None:
    a = build_cnn(name, (3, 32, 32), 10, seed=5).state_dict()
    b = build_cnn(name, (3, 32, 32), 10, seed=5).state_dict()
    c = build_cnn(name, (3, 32, 32), 10, seed=6).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# -- whitening ---------------------------------------------------------------------------------------


def _smooth_uint8_images(n: int, side: int, seed: int = 0) -> torch.Tensor:
    """Images whose neighbouring pixels and channels are strongly correlated (like photos)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 1, side // 4, side // 4, generator=g)
    base = F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)
    color = torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    x = base * color + 0.1 * torch.randn(n, 3, side, side, generator=g)
    return ((x - x.min()) / (x.max() - x.min()) * 255).round().to(torch.uint8)


def test_whitening_makes_stem_outputs_white() -> None:
    x = _smooth_uint8_images(200, 16)
    mean, std = [0.5, 0.45, 0.4], [0.2, 0.2, 0.25]
    model = FastNet(widths=(8, 8, 8))
    init_whitening(model, x, mean, std, eps=1e-8)
    xn = (x.double() / 255 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(
        std, dtype=torch.float64
    ).view(1, 3, 1, 1)
    # the raw 2x2 patches are far from white: that is what makes the check meaningful
    patches = F.unfold(xn, 2).transpose(1, 2).reshape(-1, 12)
    raw_cov = torch.cov(patches.T)
    assert (raw_cov - torch.eye(12, dtype=torch.float64)).abs().max() > 0.5
    with torch.no_grad():
        out = F.conv2d(xn, model.stem.weight.double(), model.stem.bias.double())  # (N, 24, 15, 15)
    first = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    second = out[:, 12:].permute(0, 2, 3, 1).reshape(-1, 12)
    torch.testing.assert_close(torch.cov(first.T), torch.eye(12, dtype=torch.float64), atol=1e-3, rtol=0)
    torch.testing.assert_close(first.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(second, -first)  # the negated copies
    assert not model.stem.weight.requires_grad


def test_whitening_rejects_bad_input() -> None:
    model = FastNet(widths=(8, 8, 8))
    with pytest.raises(ValueError, match="uint8"):
        init_whitening(model, torch.rand(10, 3, 16, 16), [0.5] * 3, [0.2] * 3)
    with pytest.raises(ValueError, match=r"\(N, 3, H>=2, W>=2\)"):
        init_whitening(model, torch.zeros(10, 1, 16, 16, dtype=torch.uint8), [0.5] * 3, [0.2] * 3)
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        init_whitening(model, torch.zeros(10, 3, 16, 16, dtype=torch.uint8), [0.5], [0.2])
    with pytest.raises(TypeError, match="FastNet"):
        init_whitening(SeedVGG(), torch.zeros(10, 3, 16, 16, dtype=torch.uint8), [0.5] * 3, [0.2] * 3)


# -- FLOPs -------------------------------------------------------------------------------------------


def test_count_flops_by_hand() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 8x8 out: 8*8 * 4 * (3*3*3) = 6912 MACs
        nn.ReLU(),
        nn.Conv2d(4, 2, 2, stride=2, groups=2),  # 4x4 out: 4*4 * 2 * (2*2*2) = 256 MACs
        nn.Flatten(),
        nn.Linear(32, 5),  # 160 MACs
    )
    assert count_flops(net, (3, 8, 8)) == 2 * (6912 + 256 + 160)


def test_count_flops_vgg_by_hand() -> None:
    # (side, in, out) of each 3x3 conv: sides 32, 16, 8, 4, 2 after each pool
    convs = [(32, 3, 64), (16, 64, 128), (8, 128, 256), (8, 256, 256), (4, 256, 512), (4, 512, 512)]
    convs += [(2, 512, 512), (2, 512, 512)]
    macs = sum(s * s * cout * cin * 9 for s, cin, cout in convs) + 512 * 10
    model = SeedVGG()
    assert model.training
    assert count_flops(model, (3, 32, 32)) == 2 * macs == 305_539_072
    assert model.training  # mode restored


# -- optimizer groups, TTA, lookahead ----------------------------------------------------------------


def test_param_groups() -> None:
    model = FastNet(widths=(8, 16, 16))
    groups = param_groups(model, lr=0.2, weight_decay=1e-3, bias_lr_scale=64)
    by_name = {g["name"]: g for g in groups}
    bn_biases = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {id(p) for p in by_name["bn_bias"]["params"]} == {id(p) for p in bn_biases}
    assert by_name["bn_bias"]["lr"] == pytest.approx(0.2 * 64)
    assert by_name["bn_bias"]["weight_decay"] == pytest.approx(1e-3 / 64)
    assert by_name["weights"]["lr_scale"] == 1.0 and by_name["bn_bias"]["lr_scale"] == 64
    grouped = {id(p) for g in groups for p in g["params"]}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert grouped == trainable
    assert id(model.stem.weight) not in grouped and id(model.stem.bias) in grouped
    torch.optim.SGD(groups, lr=0.2, momentum=0.85, nesterov=True)  # torch accepts the extra keys


def test_tta_levels() -> None:
    model = build_cnn("fastnet", (3, 16, 16), 10, seed=0, widths=(8, 16, 16)).eval()
    x = torch.randn(5, 3, 16, 16)
    torch.testing.assert_close(tta_logits(model, x, level=0), model(x))
    flipped = torch.flip(x, dims=(3,))
    torch.testing.assert_close(tta_logits(model, x, level=1), tta_logits(model, flipped, level=1))
    out2 = tta_logits(model, x.contiguous(memory_format=torch.channels_last), level=2)
    assert out2.shape == (5, 10)
    torch.testing.assert_close(out2, tta_logits(model, x, level=2), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="level"):
        tta_logits(model, x, level=3)


def test_lookahead_ema() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    la = LookaheadEMA(model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    la.update(model, decay=0.75)  # slow = 0.75 * start + 0.25 * (start + 1); model <- slow
    torch.testing.assert_close(model[0].weight, start["0.weight"] + 0.25)
    assert int(model[1].num_batches_tracked) == 0  # integer buffers are left alone
    with torch.no_grad():
        model[0].weight.add_(1.0)
    la.finish(model)  # decay 1: back to the slow weights
    torch.testing.assert_close(model[0].weight, start["0.weight"] + 0.25)
    restored = LookaheadEMA(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)))
    restored.load_state_dict(la.state_dict())
    assert all(torch.equal(restored.slow[k], la.slow[k]) for k in la.slow)
    with pytest.raises(ValueError, match=r"missing \['1.bias'\]"):
        restored.load_state_dict({k: v for k, v in la.state_dict().items() if k != "1.bias"})


# -- errors ------------------------------------------------------------------------------------------


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(ValueError, match=r"unknown CNN 'vgg16'.*did you mean 'vgg'"):
        build_cnn("vgg16", (3, 32, 32), 10, seed=0)
    with pytest.raises(
        ValueError, match=r"unknown CNN 'transformer'; choose from vgg, fastnet, fastnet-m, fastnet-s"
    ):
        build_cnn("transformer", (3, 32, 32), 10, seed=0)


@pytest.mark.parametrize(
    ("name", "shape", "opts", "match"),
    [
        ("vgg", (3, 64, 64), {}, r"vgg: images of 64x64 do not end at 1x1"),
        ("vgg", (3, 16, 32), {}, r"vgg: images of 16x32"),
        ("fastnet", (3, 8, 8), {}, r"fastnet: images of 8x8 are too small .* at least 9 pixels"),
        ("fastnet", (3, 32), {}, r"in_shape must be \(C, H, W\)"),
        ("fastnet", (0, 32, 32), {}, r"in_shape must be \(C, H, W\) with positive sides"),
        ("vgg", (3, 32, 32), {"widths": (8,)}, r"vgg: takes no options"),
        ("fastnet", (3, 32, 32), {"depth": 3}, r"fastnet: bad option"),
        ("fastnet", (3, 32, 32), {"widths": (8, 0)}, r"widths must be positive"),
    ],
)
def test_bad_shapes_and_options(name: str, shape: tuple, opts: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_cnn(name, shape, 10, seed=0, **opts)
