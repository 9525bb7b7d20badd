"""What the torch reference builds, by name, without importing torch: the registries that
`chainrule.train.config` offers as choices (so `chainrule --help` lists them and starts without
torch) and that `cnn.build_cnn` and `mlp.to_torch` resolve to classes. A new CNN is its class in
`cnn.py` plus one entry in `NETWORKS`."""

from __future__ import annotations

from typing import Any

# network name -> (class name in chainrule.torch_ref.cnn, its default keyword arguments)
NETWORKS: dict[str, tuple[str, dict[str, Any]]] = {
    "vgg": ("SeedVGG", {}),
    "fastnet": ("FastNet", {"widths": (64, 256, 256)}),
    "fastnet-m": ("FastNet", {"widths": (64, 128, 256)}),
    "fastnet-s": ("FastNet", {"widths": (32, 64, 128)}),
}

# `to_torch`'s implementations of a chainrule BatchNorm1d: name -> "module:Class"
BATCH_NORM_IMPLS: dict[str, str] = {
    "torch": "torch.nn:BatchNorm1d",
    "autograd": "chainrule.torch_ref.batchnorm:BatchNormAutograd",
    "manual": "chainrule.torch_ref.batchnorm:BatchNormManual",
}
