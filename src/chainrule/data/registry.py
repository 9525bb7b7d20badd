"""What the built-in data sets are: names, file names, classes, sources and checksums.

Checksums are md5 of the *decompressed payload* for gzipped IDX files (the `.gz` wrappers of
different mirrors differ, the payloads do not) and of the archive itself for tarballs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip

# The four IDX files of MNIST and Fashion-MNIST, by role.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DatasetSpec:
    """One built-in data set.

    Attributes:
        name: canonical name (`load(name)`).
        kind: "idx" (four IDX files) or "cifar10" (any CIFAR-10 format).
        classes: class names, index = label.
        folders: sub-folder names tried inside a root (besides the root itself).
        mirrors: base URLs tried in order by `download=True`.
        downloads: file name -> md5 of its payload (decompressed for `.gz` IDX files).
    """

    name: str
    kind: str
    classes: list[str]
    folders: tuple[str, ...]
    mirrors: tuple[str, ...]
    downloads: dict[str, str] = field(default_factory=dict)


SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        kind="idx",
        classes=MNIST_CLASSES,
        folders=("mnist", "MNIST", "MNIST/raw"),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        downloads={
            "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        kind="idx",
        classes=FASHION_CLASSES,
        folders=("fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        downloads={
            "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
        },
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        kind="cifar10",
        classes=CIFAR10_CLASSES,
        folders=("cifar10", "cifar-10", "CIFAR10"),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        downloads={"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    ),
}

ALIASES = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}

# md5 of decompressed label payloads, to catch e.g. MNIST files loaded as Fashion-MNIST.
LABEL_MD5 = {
    "mnist": {"a25bea736e30d166cdddb491f175f624", "27ae3e4e09519cfbb04c329615203637"},
    "fashion-mnist": {"9018921c3c673c538a1fc5bad174d6f9", "15d484375f8d13e6eb1aabb0c3f46965"},
}


def get_spec(name: str) -> DatasetSpec:
    """The spec for `name` (case-insensitive; aliases such as "fashion_mnist", "cifar-10")."""
    key = ALIASES.get(str(name).strip().lower())
    if key is None:
        known = ", ".join(sorted(SPECS))
        raise ValueError(f"unknown data set {name!r}; known: {known} (or use load_folder(path))")
    return SPECS[key]
