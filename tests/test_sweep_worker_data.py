"""A sweep worker keeps the prepared data set for the next trial with the same split and
preprocessing, read-only, and prepares a new one when the split changes."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.sweep import worker
from chainrule.train import TrainConfig
from chainrule.train.prepare import load_raw, prepare


@pytest.fixture(autouse=True)
def _fresh_cache():
    worker._PREPARED.clear()
    yield
    worker._PREPARED.clear()


def test_prepared_data_is_reused_and_read_only():
    cfg = TrainConfig(dataset="synthetic", hidden_sizes=[8])
    raw = load_raw(cfg)
    a = worker._prepared(cfg, raw)
    assert worker._prepared(cfg.replace(lr=0.5, hidden_sizes=[32], dropout=0.3), raw) is a
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        arr = getattr(a, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    fresh = prepare(raw, cfg)  # the same arrays a trial without the cache gets
    np.testing.assert_array_equal(a.x_train, fresh.x_train)
    np.testing.assert_array_equal(a.y_val, fresh.y_val)


CHANGES = [{"seed": 1}, {"val_fraction": 0.2}, {"preprocess": "scale"}, {"dtype": "float64"}]


@pytest.mark.parametrize("change", CHANGES)
def test_a_different_split_or_preprocessing_prepares_again(change):
    cfg = TrainConfig(dataset="synthetic", hidden_sizes=[8])
    raw = load_raw(cfg)
    a = worker._prepared(cfg, raw)
    b = worker._prepared(cfg.replace(**change), raw)
    assert b is not a
    np.testing.assert_array_equal(b.x_train, prepare(raw, cfg.replace(**change)).x_train)
