"""`load(name)` and `load_folder(path)`: find the files, decode once, cache, return a `Dataset`."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cache as _cache
from .cifar import read_cifar10
from .download import download_files
from .errors import DataFormatError, DatasetNotFoundError, DownloadError
from .idx import parse_idx, read_bytes
from .imagefolder import decode_tree, scan_tree
from .registry import IDX_FILES, LABEL_MD5, DatasetSpec, get_spec


@dataclass(eq=False)
class Dataset:
    """Train and test splits of an image classification data set.

    Attributes:
        name: data set name ("mnist", "fashion-mnist", "cifar10", or a folder's name).
        x_train: uint8 images (N, C, H, W); read-only memory maps when loaded from the cache.
        y_train: int64 labels (N,), values in [0, num_classes).
        x_test, y_test: the same for the test split (may hold 0 images for a user's folder).
        classes: class names; `classes[label]`.
        source: the file or folder the arrays were decoded from.
        files: what was read: `{"path", "bytes", "md5"}` per file (`{"path", "files", "bytes",
            "sha256"}` for a folder tree of images).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str = ""
    files: list[dict] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={self.x_train.shape[0]}, test={self.x_test.shape[0]}, "
            f"image_shape={self.image_shape}, classes={self.num_classes})"
        )


# ---- where to look --------------------------------------------------------------------------------
def data_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The roots searched, in order: `root`, `$CHAINRULE_DATA`, the user cache folder, and the older
    `~/.cache/chainrule` where it exists and is another folder (see `chainrule.data.cache`)."""
    roots = []
    if root is not None:
        roots.append(Path(root).expanduser())
    env = os.environ.get("CHAINRULE_DATA")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(_cache.user_cache_dir())
    legacy = _cache.legacy_cache_dir()
    if legacy is not None:
        roots.append(legacy)
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def _candidates(spec: DatasetSpec, roots: list[Path]) -> list[Path]:
    out = []
    for r in roots:
        out += [r / f for f in spec.folders] + [r]
    return out


def _find_idx(spec: DatasetSpec, roots: list[Path]) -> dict[str, Path] | None:
    for d in _candidates(spec, roots):
        found = {}
        for role, fname in IDX_FILES.items():
            p = next((d / n for n in (fname, fname + ".gz") if (d / n).is_file()), None)
            if p is not None:
                found[role] = p
        if len(found) == len(IDX_FILES):
            return found
    return None


def _partial_idx(spec: DatasetSpec, roots: list[Path]) -> str:
    """A note on a folder holding some but not all of the IDX files (for the error message)."""
    for d in _candidates(spec, roots):
        have = [f for f in IDX_FILES.values() if (d / f).is_file() or (d / (f + ".gz")).is_file()]
        if have:
            missing = [
                f
                + "[.gz]"
                + (" (a folder there, not a file)" if (d / f).is_dir() or (d / (f + ".gz")).is_dir() else "")
                for f in IDX_FILES.values()
                if f not in have
            ]
            return f"{d} holds only part of {spec.name}: missing {', '.join(missing)}"
    return ""


CIFAR_SOURCES = (
    ("cifar-10-batches-py", "python"),
    ("cifar-10-python.tar.gz", "python"),
    ("cifar-10-batches-bin", "binary"),
    ("cifar-10-binary.tar.gz", "binary"),
    ("cifar10-jpeg.tar.gz", "folder"),
    ("cifar-10-jpeg.tar.gz", "folder"),
)


def _find_cifar(spec: DatasetSpec, roots: list[Path]) -> tuple[Path, str] | None:
    for d in _candidates(spec, roots):
        for fname, fmt in CIFAR_SOURCES:
            if (d / fname).exists():
                return d / fname, fmt
        if d.name in spec.folders and (d / "train").is_dir():
            return d, "folder"
    return None


def _not_found(spec: DatasetSpec, roots: list[Path]) -> DatasetNotFoundError:
    """A short first line (what is missing), the folders searched one per line, then what to do."""
    where = "".join(f"\n  {d}" for d in _candidates(spec, roots))
    if spec.kind == "idx":
        what = "the four IDX files " + ", ".join(f + ".gz" for f in IDX_FILES.values()) + " (gzipped or not)"
    else:
        what = (
            "cifar-10-python.tar.gz (or the extracted cifar-10-batches-py/), cifar-10-binary.tar.gz "
            "(or cifar-10-batches-bin/), or an image tree train/<class>/*.png|jpg (folder or .tar.gz)"
        )
    partial = _partial_idx(spec, roots) if spec.kind == "idx" else ""
    only = len(roots) == 1  # a folder the user named (or nothing else to search)
    head = partial or f"{spec.name} not found" + (f" in {roots[0]}" if only else "")
    return DatasetNotFoundError(
        f"{head}; looked in:{where}\n"
        f"Put {what} in {roots[0] / spec.folders[0]}"
        + ("" if only else ", set CHAINRULE_DATA to the folder holding them,")
        + f" or fetch them with --download (load({spec.name!r}, download=True))."
    )


# ---- decoding -------------------------------------------------------------------------------------
def _decode_idx(spec: DatasetSpec, files: dict[str, Path]) -> dict:
    arrays, payload_md5 = {}, {}
    for role, path in files.items():
        payload = read_bytes(path)
        payload_md5[role] = hashlib.md5(payload).hexdigest()
        arrays[role] = parse_idx(payload, str(path))
    for other, sums in LABEL_MD5.items():
        if other != spec.name and payload_md5["y_train"] in sums:
            raise DataFormatError(f"{files['y_train']}: these are the {other} labels, not {spec.name}")
    out = {}
    for split in ("train", "test"):
        xp, yp = files[f"x_{split}"], files[f"y_{split}"]
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataFormatError(f"{xp}: expected uint8 images (N, H, W), got {x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise DataFormatError(f"{yp}: expected uint8 labels (N,), got {y.dtype} {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise DataFormatError(
                f"{xp} holds {x.shape[0]} images but {yp} holds {y.shape[0]} labels (lengths differ)"
            )
        if y.size and int(y.max()) >= len(spec.classes):
            raise DataFormatError(f"{yp}: label {int(y.max())} out of range [0, {len(spec.classes)})")
        out[f"x_{split}"] = x[:, None]
        out[f"y_{split}"] = y.astype(np.int64)
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise DataFormatError(
            f"{files['x_test']}: test images are {out['x_test'].shape[2:]}, train images "
            f"{out['x_train'].shape[2:]}"
        )
    out["classes"] = list(spec.classes)
    return out


def _cached(
    name: str, key: str | None, decode: Callable[[], dict], source: str, use_cache: bool, files: list[dict]
) -> Dataset:
    """The cache entry for (name, key) if there is one, else `decode()` and store it."""
    if use_cache and key is not None:
        hit = _cache.load_entry(name, key)
        if hit is not None:
            arrays, meta = hit
            return Dataset(
                name, classes=list(meta["classes"]), source=meta.get("source", source), files=files, **arrays
            )
    d = decode()
    arrays = {k: d[k] for k in _cache.ARRAY_NAMES}
    if use_cache and key is not None:
        try:
            _cache.save_entry(name, key, arrays, {"name": name, "classes": d["classes"], "source": source})
        except OSError as e:  # a read-only or full disk must not stop training
            warnings.warn(f"could not write the data cache in {_cache.cache_dir()}: {e}", stacklevel=3)
        else:
            hit = _cache.load_entry(name, key)
            if hit is not None:
                arrays = hit[0]
    return Dataset(name, classes=list(d["classes"]), source=source, files=files, **arrays)


def load(
    name: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    cache: bool = True,
    mirror: str | None = None,
    progress: bool | None = None,
    exclusive: bool = False,
) -> Dataset:
    """Load a built-in data set: "mnist", "fashion-mnist" (or "fashion_mnist"), "cifar10" ("cifar-10"),
    or the generated "synthetic" and "synthetic-hard" (no files: the other arguments are unused).

    Args:
        name: data set name (case-insensitive).
        root: folder to search first; then `$CHAINRULE_DATA`, then the user cache folder
            (the platform's: `~/.cache/chainrule` on Linux; see `chainrule.data.cache`). In each,
            both `root/<name>/` (also torchvision's `MNIST/raw/`) and files directly in `root` are
            accepted.
        download: when the files are nowhere, fetch them from the canonical sources (md5
            checked, progress bar, atomic rename) into the first root's `<name>/` folder.
        cache: decode once and keep `.npy` arrays in the cache (see `chainrule.data.cache`);
            later loads memory-map them (read-only arrays).
        mirror: base URL to download from instead of the canonical ones (also
            `$CHAINRULE_MIRROR`).
        progress: progress bar for downloads (default: when stderr is a terminal).
        exclusive: `root` is the only place searched (a folder the user named: data from
            anywhere else is never used in its place).
    Returns:
        Dataset with uint8 images (N, C, H, W) and int64 labels.
    Raises:
        DatasetNotFoundError: not found and `download` is False (the message says where to put
            which files); DownloadError when downloading fails; DataFormatError for bad files.
    """
    spec = get_spec(name)
    if not spec.needs_files:  # generated: no files to find
        from .synthetic import generate

        *arrays, classes = generate(**spec.generator)
        return Dataset(spec.name, *arrays, classes, source="generated")
    if exclusive and root is None:
        raise ValueError("exclusive=True needs a root")
    roots = [Path(root).expanduser()] if exclusive and root is not None else data_roots(root)
    found = _find(spec, roots)
    if found is None:
        if not download:
            raise _not_found(spec, roots)
        target = roots[0] / spec.folders[0]
        mirror = mirror or os.environ.get("CHAINRULE_MIRROR")
        mirrors = (mirror,) if mirror else spec.mirrors
        try:
            download_files(spec.downloads, mirrors, target, progress=progress)
        except DownloadError as e:
            raise DownloadError(f"{e}\n{_not_found(spec, roots)}") from e
        found = _find(spec, [roots[0]])
        if found is None:  # pragma: no cover - the downloaded files are what _find looks for
            raise _not_found(spec, roots)
    if spec.kind == "idx":
        files = found
        assert isinstance(files, dict)
        records = _cache.file_records(files[r] for r in IDX_FILES)
        key = _cache.key_for_records(spec.name, records) if cache else None
        source = str(files["x_train"].parent)
        return _cached(spec.name, key, lambda: _decode_idx(spec, files), source, cache, records)
    path, fmt = found
    assert isinstance(path, Path)
    if fmt == "folder":
        return _load_tree(path, spec.name, cache, None)
    records = _cache.file_records(
        [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    )
    key = _cache.key_for_records(f"{spec.name}-{fmt}", records) if cache else None
    return _cached(spec.name, key, lambda: read_cifar10(path, fmt), str(path), cache, records)


def _find(spec: DatasetSpec, roots: list[Path]) -> dict[str, Path] | tuple[Path, str] | None:
    return _find_idx(spec, roots) if spec.kind == "idx" else _find_cifar(spec, roots)


def _load_tree(path: Path, name: str, cache: bool, workers: int | None) -> Dataset:
    if path.is_dir():
        tree = scan_tree(path)
        key = _cache.key_for_tree(name, path, tree.stats) if cache else None
        records = [_cache.tree_record(path, tree.stats)]
        return _cached(name, key, lambda: decode_tree(tree, workers), str(path), cache, records)
    records = _cache.file_records([path])
    key = _cache.key_for_records(name, records) if cache else None
    return _cached(name, key, lambda: decode_tree(scan_tree(path), workers), str(path), cache, records)


def load_folder(
    path: str | os.PathLike[str], name: str | None = None, cache: bool = True, workers: int | None = None
) -> Dataset:
    """Load a user's image-folder tree: `train/<class>/*.{png,jpg,jpeg}` (+ `test/<class>/...`),
    as a folder or a `.tar.gz`; a tree with only `<class>/` folders is all training data.

    Args:
        path: the folder or archive.
        name: data set name (default: the folder/archive name without extension).
        cache: cache the decoded arrays (key: the archive's md5, or each file's path, size and
            mtime for a folder).
        workers: decoding processes (default: all CPUs for 2,000 images or more).
    Raises:
        FileNotFoundError: no such path. DataFormatError: empty class folder, unreadable image,
            inconsistent image sizes, test class without a train folder.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"{path}: no such folder or archive")
    if name is None:
        name = path.name
        for ext in (".tar.gz", ".tgz", ".tar"):
            if name.endswith(ext):
                name = name[: -len(ext)]
    return _load_tree(path, name, cache, workers)
