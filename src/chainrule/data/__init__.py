"""Real data: MNIST, Fashion-MNIST and CIFAR-10 loaders, caching, preprocessing and batching.

>>> from chainrule import data
>>> ds = data.load("mnist", root="../shared/datasets")     # uint8 (N, 1, 28, 28), int64 labels
>>> (x_tr, x_te), (mean, std) = data.standardize(ds.x_train, ds.x_test)
>>> for xb, yb in data.BatchIterator(data.flatten(x_tr), ds.y_train, batch_size=128):
...     ...

`train_val_split` and `BatchIterator` are the split and the batches of `chainrule train` (for the
same fraction and seed), so a notebook reproduces a run's validation set and batch order;
`preprocess.normalizer` is the one normalization (the trainer's, the torch engine's and
`standardize`'s). Every data set has one entry in `registry.SPECS` (its files, classes and sources;
the generated "synthetic" sets, made by `synthetic.generate`, too): `chainrule train --dataset` takes
its names from there.
"""

from .augment import flip_where, random_crop, random_flip
from .batching import BatchIterator
from .cache import cache_dir, user_cache_dir
from .cifar import read_cifar10
from .datasets import Dataset, data_roots, load, load_folder
from .download import download_url
from .errors import DataFormatError, DatasetNotFoundError, DownloadError
from .idx import read_idx, write_idx
from .imagefolder import read_image_folder
from .plots import plot_class_samples
from .preprocess import channel_stats, flatten, one_hot, read_image, standardize, to_float, train_val_split
from .registry import SPECS, get_spec

__all__ = [
    "SPECS",
    "BatchIterator",
    "DataFormatError",
    "Dataset",
    "DatasetNotFoundError",
    "DownloadError",
    "cache_dir",
    "channel_stats",
    "data_roots",
    "download_url",
    "flatten",
    "flip_where",
    "get_spec",
    "load",
    "load_folder",
    "one_hot",
    "plot_class_samples",
    "random_crop",
    "random_flip",
    "read_cifar10",
    "read_idx",
    "read_image",
    "read_image_folder",
    "standardize",
    "to_float",
    "train_val_split",
    "user_cache_dir",
    "write_idx",
]
