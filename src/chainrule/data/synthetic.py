"""Small synthetic data sets: the generated built-in sets ("synthetic", "synthetic-hard"), and
writers of every canonical on-disk format (for tests and demos).

Each writer returns the arrays it wrote, so a test can compare what a loader reads back.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from .idx import write_idx
from .registry import CIFAR10_CLASSES, IDX_FILES, generated_classes


def generate(
    seed: int = 1234,
    n_train: int = 600,
    n_test: int = 200,
    classes: int = 3,
    size: int = 8,
    noise: float = 45.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A tiny image data set: each class is a fixed random 1 x size x size pattern plus Gaussian
    noise of std `noise` (gray levels). Learnable in a few hundred steps with the defaults.

    Returns: x_train, y_train, x_test, y_test (uint8 (N, 1, size, size) images, int64 labels) and
    the class names "class0", "class1", ...
    """
    rng = np.random.default_rng(seed)
    protos = rng.uniform(40, 215, (classes, 1, size, size))

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, classes, n).astype(np.int64)
        x = protos[y] + rng.normal(0, noise, (n, 1, size, size))
        return np.clip(np.rint(x), 0, 255).astype(np.uint8), y

    x_tr, y_tr = make(n_train)
    x_te, y_te = make(n_test)
    return x_tr, y_tr, x_te, y_te, generated_classes(classes)


def random_split(
    n_train: int, n_test: int, shape: tuple[int, ...], num_classes: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random uint8 images `(N, *shape)` and int64 labels covering every class."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        out[f"x_{split}"] = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        out[f"y_{split}"] = (np.arange(n) % num_classes)[rng.permutation(n)].astype(np.int64)
    return out


def write_idx_dataset(
    folder: str | os.PathLike[str], n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the four MNIST-style IDX files (28x28, 10 classes) into `folder`."""
    folder = Path(folder)
    d = random_split(n_train, n_test, (28, 28), seed=seed)
    for role, fname in IDX_FILES.items():
        arr = d[role].astype(np.uint8)
        write_idx(folder / (fname + (".gz" if gz else "")), arr)
    return {k: (v[:, None] if k.startswith("x") else v) for k, v in d.items()}


def _tar_dir(folder: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)


def write_cifar_python(
    folder: str | os.PathLike[str], per_batch: int = 12, archive: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write CIFAR-10's python format (`cifar-10-batches-py/` and, if `archive`, the .tar.gz)."""
    folder = Path(folder)
    d = random_split(5 * per_batch, per_batch, (3, 32, 32), seed=seed)
    bdir = folder / "cifar-10-batches-py"
    bdir.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        x, y = (d["x_test"], d["y_test"]) if i == 5 else (d["x_train"], d["y_train"])
        sl = slice(None) if i == 5 else slice(i * per_batch, (i + 1) * per_batch)
        batch = {
            b"batch_label": f"batch {i + 1} of 5".encode(),
            b"labels": [int(v) for v in y[sl]],
            b"data": x[sl].reshape(-1, 3072),
            b"filenames": [f"img_{j}.png".encode() for j in range(len(y[sl]))],
        }
        (bdir / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    (bdir / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    if archive:
        _tar_dir(bdir, folder / "cifar-10-python.tar.gz")
    return d


def write_cifar_binary(
    folder: str | os.PathLike[str], per_batch: int = 12, archive: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write CIFAR-10's binary format (`cifar-10-batches-bin/` and, if `archive`, the .tar.gz)."""
    folder = Path(folder)
    d = random_split(5 * per_batch, per_batch, (3, 32, 32), seed=seed)
    bdir = folder / "cifar-10-batches-bin"
    bdir.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for i, name in enumerate(names):
        x, y = (d["x_test"], d["y_test"]) if i == 5 else (d["x_train"], d["y_train"])
        sl = slice(None) if i == 5 else slice(i * per_batch, (i + 1) * per_batch)
        rec = np.concatenate([y[sl].astype(np.uint8)[:, None], x[sl].reshape(-1, 3072)], axis=1)
        (bdir / name).write_bytes(rec.tobytes())
    (bdir / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    if archive:
        _tar_dir(bdir, folder / "cifar-10-binary.tar.gz")
    return d


def write_image_tree(
    folder: str | os.PathLike[str],
    classes: tuple[str, ...] = ("cat", "dog", "frog"),
    n_train: int = 4,
    n_test: int = 2,
    size: tuple[int, int] = (8, 6),
    channels: int = 3,
    fmt: str = "png",
    archive: str | None = None,
    seed: int = 0,
) -> dict:
    """Write `train/<class>/NNNN.<fmt>` and `test/<class>/...` images (lossless PNG by default).

    Args:
        size: (H, W) of every image. channels: 1 (grayscale) or 3.
        archive: if given, also pack the tree into this `.tar.gz` path (under a top folder).
    Returns:
        dict with x_train, y_train, x_test, y_test (in the loader's order) and classes.
    """
    from PIL import Image

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    classes = tuple(sorted(classes))
    out: dict = {"classes": list(classes)}
    for split, n in (("train", n_train), ("test", n_test)):
        xs, ys = [], []
        for label, cls in enumerate(classes):
            cdir = folder / split / cls
            if n:
                cdir.mkdir(parents=True, exist_ok=True)
            for j in range(n):
                img = rng.integers(0, 256, size=(*size, 3) if channels == 3 else size, dtype=np.uint8)
                Image.fromarray(img).save(cdir / f"{j:04d}.{fmt}")
                xs.append(img[None] if channels == 1 else img.transpose(2, 0, 1))
                ys.append(label)
        out[f"x_{split}"] = np.stack(xs) if xs else np.empty((0, channels, *size), np.uint8)
        out[f"y_{split}"] = np.array(ys, np.int64)
    if archive is not None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for split in ("train", "test"):
                if (folder / split).is_dir():
                    tf.add(folder / split, arcname=f"{folder.name}/{split}")
        Path(archive).write_bytes(buf.getvalue())
    return out
