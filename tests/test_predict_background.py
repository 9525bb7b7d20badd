"""`chainrule predict` on a photo of a dark digit on white paper: an MNIST run is trained on light
digits on black, so such an image is detected (border brighter than centre) and inverted, with a
note; `--invert` / `--no-invert` decide for every image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from chainrule.cli import main
from chainrule.train import TrainConfig
from chainrule.train.run import light_background, train_run


def _digit(dark_on_light: bool) -> np.ndarray:
    """A 28x28 "1": a light bar on black (MNIST's way), or its negative (ink on paper)."""
    img = np.zeros((28, 28), np.uint8)
    img[5:23, 12:16] = 230
    return 255 - img if dark_on_light else img


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A tiny run on MNIST-format files (random pixels: the model is only read, not judged)."""
    from chainrule.data.synthetic import write_idx_dataset

    tmp = tmp_path_factory.mktemp("predict")
    write_idx_dataset(tmp / "data" / "mnist", n_train=100, n_test=20)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHAINRULE_CACHE", str(tmp / "cache"))
        data = str(tmp / "data")
        cfg = TrainConfig(dataset="mnist", data_dir=data, hidden_sizes=[8], steps=3, batch_size=20)
        cfg.run_dir = str(tmp / "run")
        res = train_run(cfg, quiet=True, plots=False)
    paper, mnist_like = tmp / "paper.png", tmp / "mnist-like.png"
    Image.fromarray(_digit(True)).save(paper)
    Image.fromarray(_digit(False)).save(mnist_like)
    return res.run_dir, paper, mnist_like


def test_light_background_is_a_border_brighter_than_the_centre():
    assert light_background(_digit(True)[None]) and not light_background(_digit(False)[None])
    assert not light_background(np.full((1, 28, 28), 200, np.uint8))  # a flat image: nothing to say
    assert not light_background(np.full((1, 28, 28), 40, np.uint8))
    rgb = np.stack([_digit(True)] * 3)  # a colour photo of ink on paper
    assert light_background(rgb)


def test_predict_inverts_a_dark_digit_on_white_with_a_note(mnist_run, capsys):
    run, paper, mnist_like = mnist_run
    assert main(["predict", str(run), str(paper), str(mnist_like), "--json"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert [r["inverted"] for r in res] == [True, False]
    # inverted, the photo is the MNIST-style image: the same answer, to the last digit
    assert res[0]["top"] == res[1]["top"] and res[0]["class"] == res[1]["class"]
    notes = err.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith(f"chainrule: {paper}: dark on a light background")
    assert "--no-invert" in notes[0]


def test_invert_and_no_invert_decide_for_every_image(mnist_run, capsys):
    run, paper, mnist_like = mnist_run
    assert main(["predict", str(run), str(paper), str(mnist_like), "--json", "--no-invert"]) == 0
    out, err = capsys.readouterr()
    kept = json.loads(out)
    assert [r["inverted"] for r in kept] == [False, False] and err == ""
    assert main(["predict", str(run), str(paper), str(mnist_like), "--json", "--invert"]) == 0
    out, err = capsys.readouterr()
    both = json.loads(out)
    assert [r["inverted"] for r in both] == [True, True] and err == ""
    assert both[1]["top"] == kept[0]["top"]  # the MNIST-style image inverted is the photo
