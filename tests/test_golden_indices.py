"""The trainer's validation split and batch order, pinned: every published figure comes from these
indices, so moving the data code must not change one of them. Each value is the first indices and a
hash of the whole array, recorded before the data pipeline was unified."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from chainrule.data import BatchIterator
from chainrule.data.batching import epoch_permutation
from chainrule.data.preprocess import stratified_split
from chainrule.train import TrainConfig
from chainrule.train.prepare import prepare, synthetic
from chainrule.train.trainer import Trainer, _Batches


def _hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(a, np.int64).tobytes()).hexdigest()[:16]


def _labels() -> np.ndarray:
    return np.random.default_rng(42).integers(0, 10, 1003)


@pytest.mark.parametrize(
    ("fraction", "seed", "n_val", "head", "train_hash", "val_hash"),
    [
        (0.1, 0, 102, [13, 15, 23, 33, 44, 45, 62, 73], "99a568b0f558e8a7", "0a45aff76a9622fc"),
        (0.1, 1, 102, [1, 22, 37, 47, 56, 65, 71, 75], "0938b34892b3fe1a", "33d28273f7fc00a9"),
        (0.25, 7, 251, [1, 2, 3, 6, 8, 9, 11, 17], "50f5809a6db2c2c2", "68220b02a008982f"),
    ],
)
def test_validation_split_is_pinned(fraction, seed, n_val, head, train_hash, val_hash):
    train, val = stratified_split(_labels(), fraction, seed)
    assert val.size == n_val and val[:8].tolist() == head
    assert (_hash(train), _hash(val)) == (train_hash, val_hash)


def test_synthetic_labels_are_pinned():
    raw = synthetic()
    assert raw.y_train[:10].tolist() == [0, 1, 0, 0, 1, 0, 2, 0, 1, 0]
    assert _hash(raw.y_train) == "fc8a3d7c404749da"


@pytest.mark.parametrize(
    ("epoch", "head", "perm_hash"),
    [
        (0, [524, 438, 283, 89, 239, 36, 420, 164], "f17b3e36c6f04de3"),
        (1, [21, 103, 50, 176, 300, 226, 271, 320], "429e5b0245af22f9"),
    ],
)
def test_batch_order_is_pinned(epoch, head, perm_hash):
    cfg = TrainConfig(dataset="synthetic", batch_size=32, seed=3)
    data = prepare(synthetic(), cfg)
    trainer = Trainer(cfg, data)
    perm = epoch_permutation(
        cfg.seed, epoch, trainer.n_train
    )  # batch k of the epoch: perm[32 k : 32 (k + 1)]
    assert perm[:8].tolist() == head and _hash(perm) == perm_hash
    # what the trainer feeds and what the library's iterator yields are those batches
    spe, batches, library = (
        trainer.steps_per_epoch,
        _Batches(trainer),
        BatchIterator(data.x_train, data.y_train, 32, seed=3),
    )
    library.load_state_dict({"epoch": epoch, "batch": 0, "seed": 3})
    fed = [batches(epoch * spe + k)[1].copy() for k in range(spe)]
    yielded = [yb.copy() for _, yb in library]
    for got in (fed, yielded):
        np.testing.assert_array_equal(np.concatenate(got), data.y_train[perm])
