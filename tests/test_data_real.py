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


CIFAR_LOSSLESS = SHARED / "cifar10" / "cifar-10-python.tar.gz"
CIFAR_JPEG = SHARED / "cifar10" / "cifar10-jpeg.tar.gz"
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def cifar(real_cache):
    """`data.load("cifar10")`: the lossless python-format archive, which the loader finds first."""
    if not CIFAR_LOSSLESS.is_file():
        pytest.skip(f"no {CIFAR_LOSSLESS}")
    return _load("cifar10")


@pytest.fixture(scope="module")
def cifar_jpeg(real_cache):
    """The JPEG copy, read through its explicit path (an image-folder tree)."""
    if not CIFAR_JPEG.is_file():
        pytest.skip(f"no {CIFAR_JPEG}")
    t = time.perf_counter()
    ds = data.load_folder(CIFAR_JPEG)
    print(f"\n[data] cold load of the CIFAR-10 JPEG tree: {time.perf_counter() - t:.2f} s")
    return ds


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


def _check_cifar_layout(ds: data.Dataset) -> None:
    _check_layout(ds, (3, 32, 32), 50000, 10000)
    np.testing.assert_array_equal(np.bincount(ds.y_train), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [1000] * 10)
    assert ds.classes == CIFAR_CLASSES


def test_cifar10_lossless_has_the_published_statistics(cifar):
    # The published CIFAR-10 figures (train mean/std, test mean), not this code's own output.
    _check_cifar_layout(cifar)
    assert "cifar-10-python" in cifar.source
    mean, std = data.channel_stats(cifar.x_train, per_channel=True)
    np.testing.assert_array_equal(np.round(mean, 4), [0.4914, 0.4822, 0.4465])
    np.testing.assert_array_equal(np.round(std, 4), [0.2470, 0.2435, 0.2616])
    test_mean, _ = data.channel_stats(cifar.x_test, per_channel=True)
    np.testing.assert_array_equal(np.round(test_mean, 4), [0.4942, 0.4851, 0.4504])


def test_cifar10_jpeg_tree_through_its_path(cifar_jpeg):
    # ../shared/datasets/README.md: JPEG loss keeps the means and lowers the std.
    _check_cifar_layout(cifar_jpeg)
    mean, std = data.channel_stats(cifar_jpeg.x_train, per_channel=True)
    np.testing.assert_array_equal(np.round(mean, 4), [0.4913, 0.4821, 0.4465])
    np.testing.assert_array_equal(np.round(std, 4), [0.2452, 0.2428, 0.2606])


@pytest.mark.parametrize(
    ("name", "fixture"), [("mnist", "mnist"), ("fashion-mnist", "fashion"), ("cifar10", "cifar")]
)
def test_second_load_comes_from_the_cache(name, fixture, request):
    first = request.getfixturevalue(fixture)  # only this case's data set: a missing CIFAR-10 skips only it
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
