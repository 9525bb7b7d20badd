"""The per-class sample grid (seed 000, Fig. 1): written atomically as PNG or SVG."""

from __future__ import annotations

import base64
import io
from xml.etree import ElementTree

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from chainrule import data  # noqa: E402


def _dataset(c: int) -> data.Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, c, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 4
    return data.Dataset("toy", x, y, x[:4], y[:4], ["a", "b", "c", "d"])


@pytest.mark.parametrize("c", [1, 3])
def test_png_grid(tmp_path, c):
    Image = pytest.importorskip("PIL.Image")
    out = data.plot_class_samples(_dataset(c), per_class=5, path=tmp_path / "s.png", seed=1)
    assert out == tmp_path / "s.png"
    with Image.open(out) as im:
        w, h = im.size
        assert im.format == "PNG" and w > h  # 5 columns, 4 rows
        assert len(np.unique(np.asarray(im.convert("L")))) > 10  # not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]  # no temp file left


def test_svg_from_arrays_and_more_per_class_than_available(tmp_path):
    x = np.random.default_rng(0).random((6, 3, 4, 4))
    y = np.array([0, 0, 0, 1, 1, 2])
    out = data.plot_class_samples((x, y), per_class=4, path=tmp_path / "f.svg")
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    # every sample is drawn once (no class has 4), as itself, upright: each embedded image, read at the
    # centres of its 4 x 4 pixel blocks, is one of the inputs (RGB floats in [0, 1], 8 bits)
    Image = pytest.importorskip("PIL.Image")
    images = [e for e in ElementTree.fromstring(text).iter() if e.tag.endswith("}image")]
    drawn = []
    for e in images:
        href = next(v for k, v in e.attrib.items() if k.endswith("href"))
        png = base64.b64decode(href.split("base64,", 1)[1])
        with Image.open(io.BytesIO(png)) as im:
            rgb = np.asarray(im.convert("RGB"), np.float64)
        if "scale(1 -1)" in e.get("transform", ""):  # matplotlib stores it bottom row first
            rgb = rgb[::-1]
        rows, cols = (((np.arange(4) + 0.5) * n / 4).astype(int) for n in rgb.shape[:2])
        centres = rgb[rows][:, cols]
        errors = [np.abs(centres - 255 * sample.transpose(1, 2, 0)).max() for sample in x]
        assert min(errors) <= 1.0, errors
        drawn.append(int(np.argmin(errors)))
    assert sorted(drawn) == list(range(6))


def test_bad_suffix_and_shapes(tmp_path):
    with pytest.raises(ValueError, match="png or .svg"):
        data.plot_class_samples(_dataset(1), path=tmp_path / "s.jpg")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.plot_class_samples((np.zeros((4, 64)), np.zeros(4, int)), path=tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []
