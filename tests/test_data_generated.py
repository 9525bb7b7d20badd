"""The generated data sets ("synthetic", "synthetic-hard") are registered like the real ones: one
registry (`chainrule.data.registry.SPECS`) names every data set, `data.load` gives them, the config's
choices are its names, and no folder is looked for."""

from __future__ import annotations

import numpy as np

from chainrule import data
from chainrule.train import TrainConfig, load_raw, synthetic
from chainrule.train.config import DATASETS
from chainrule.train.prepare import needs_files


def test_load_gives_the_generated_sets_as_datasets():
    ds = data.load("synthetic")
    assert ds.name == "synthetic" and ds.classes == ["class0", "class1", "class2"]
    assert ds.x_train.shape == (600, 1, 8, 8) and ds.x_test.shape == (200, 1, 8, 8)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    # the same arrays as the library's synthetic() (its defaults are the registered set)
    raw = synthetic()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, name), getattr(raw, name))
    hard = data.load("synthetic-hard")
    assert hard.num_classes == 10 and len(hard.y_train) == 1200 and len(hard.y_test) == 400
    assert set(np.unique(hard.y_train)) == set(range(10))


def test_one_registry_names_every_data_set():
    assert DATASETS == tuple(data.SPECS)
    assert {"mnist", "fashion-mnist", "cifar10", "synthetic", "synthetic-hard"} <= set(DATASETS)
    assert not needs_files("synthetic") and not needs_files("synthetic-hard")
    assert needs_files("mnist") and needs_files("cifar10")
    assert needs_files("no-such-set")  # unknown: left to the loader, whose error names it


def test_a_generated_set_reads_no_folder(tmp_path):
    # a --data-dir that does not exist is an error for a real set, not looked at for a generated one
    raw = load_raw(TrainConfig(dataset="synthetic", data_dir=str(tmp_path / "missing")))
    assert raw.x_train.shape == (600, 1, 8, 8) and raw.files == []
