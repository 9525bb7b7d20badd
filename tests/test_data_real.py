"""The real data sets in ../shared/datasets (CI has them; skipped cleanly when absent).

Each data set is decoded once per session (module-scoped fixtures; only this file loads them)
into a temporary cache; the CIFAR-10 JPEG tree takes seconds. Decode times are printed (`pytest -s`).
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from conftest import SHARED_DATASETS

from chainrule import data

SHARED = SHARED_DATASETS

pytestmark = [
    pytest.mark.datasets,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data sets not found at {SHARED}"),
]


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CHAINRULE_CACHE", str(tmp_path_factory.mktemp("real-cache")))
    yield
    mp.undo()


_loaded: dict[str, tuple[data.Dataset, float]] = {}


def _load(name: str) -> data.Dataset:
    if name not in _loaded:
        t = time.perf_counter()
        ds = data.load(name, root=SHARED)
        _loaded[name] = (ds, time.perf_counter() - t)
        print(f"\n[data] cold load of {name}: {_loaded[name][1]:.2f} s")
    return _loaded[name][0]


@pytest.fixture(scope="module")
def mnist(real_cache):
    return _load("mnist")


@pytest.fixture(scope="module")
def fashion(real_cache):
    return _load("fashion-mnist")


@pytest.fixture(scope="module")
def cifar(real_cache):
    if not (SHARED / "cifar10").is_dir():
        pytest.skip("no cifar10 in the shared data sets")
    return _load("cifar10")


def _check_layout(ds: data.Dataset, shape: tuple[int, int, int], n_train: int, n_test: int) -> None:
    assert ds.x_train.shape == (n_train, *shape) and ds.x_test.shape == (n_test, *shape)
    assert ds.x_train.dtype == ds.x_test.dtype == np.uint8
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64
    assert ds.num_classes == 10 and ds.image_shape == shape


def test_mnist(mnist):
    _check_layout(mnist, (1, 28, 28), 60000, 10000)
    np.testing.assert_array_equal(
        np.bincount(mnist.y_train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    np.testing.assert_array_equal(
        np.bincount(mnist.y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    mean, std = data.channel_stats(mnist.x_train)
    assert round(float(mean[0]), 4) == 0.1307 and round(float(std[0]), 4) == 0.3081


def test_fashion_mnist(fashion):
    _check_layout(fashion, (1, 28, 28), 60000, 10000)
    np.testing.assert_array_equal(np.bincount(fashion.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(fashion.y_test), [1000] * 10)
    assert fashion.classes[9] == "Ankle boot"


def test_cifar10_jpeg(cifar):
    _check_layout(cifar, (3, 32, 32), 50000, 10000)
    np.testing.assert_array_equal(np.bincount(cifar.y_train), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(cifar.y_test), [1000] * 10)
    assert cifar.classes == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    mean, std = data.channel_stats(cifar.x_train, per_channel=True)
    np.testing.assert_array_equal(np.round(mean, 4), [0.4913, 0.4821, 0.4465])
    np.testing.assert_array_equal(np.round(std, 4), [0.2452, 0.2428, 0.2606])


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_second_load_comes_from_the_cache(name, mnist, fashion, cifar):
    first = _load(name)
    again = data.load(name, root=SHARED)
    assert isinstance(again.x_train, np.memmap)
    np.testing.assert_array_equal(again.y_train, first.y_train)
    np.testing.assert_array_equal(again.x_test[::997], first.x_test[::997])


def test_mnist_files_are_not_taken_for_fashion(tmp_path, real_cache):
    shutil.copytree(SHARED / "mnist", tmp_path / "fashion-mnist")
    with pytest.raises(data.DataFormatError, match="these are the mnist labels, not fashion-mnist"):
        data.load("fashion-mnist", root=tmp_path)


def test_sample_grid_of_real_data(tmp_path, mnist):
    pytest.importorskip("matplotlib")
    out = data.plot_class_samples(mnist, per_class=6, path=tmp_path / "mnist.png")
    assert out.stat().st_size > 5000
