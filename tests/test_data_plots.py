"""The per-class sample grid (seed 000, Fig. 1): written atomically as PNG or SVG."""

from __future__ import annotations

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


def test_bad_suffix_and_shapes(tmp_path):
    with pytest.raises(ValueError, match="png or .svg"):
        data.plot_class_samples(_dataset(1), path=tmp_path / "s.jpg")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.plot_class_samples((np.zeros((4, 64)), np.zeros(4, int)), path=tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []
