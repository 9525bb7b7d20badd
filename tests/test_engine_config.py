"""Each engine validates its own part of the config: `TrainConfig.validate` asks the engine the
backend names (`check_config`, found through the registry), and config.py names no engine's fields."""

from __future__ import annotations

import inspect

import pytest

from chainrule.train import config
from chainrule.train.config import ConfigError, TrainConfig
from chainrule.train.numpy_engine import NumpyEngine
from chainrule.train.registry import ENGINES, register_engine

# a valid value away from the default for each key only the torch engine implements, and what else
# the torch engine needs for it to validate
TORCH_ONLY_VALUES = {
    "model": ("vgg", {}),
    "device": ("cuda", {}),
    "batch_norm_impl": ("manual", {}),
    "label_smoothing": (0.1, {}),
    "tta": (1, {"model": "fastnet-s"}),
    "bias_lr_scale": (2.0, {"model": "fastnet-s"}),
    "lookahead": (True, {}),
    "micro_batch": (8, {}),
}


def test_the_table_covers_every_key_the_numpy_engine_refuses():
    assert set(TORCH_ONLY_VALUES) == set(NumpyEngine.TORCH_ONLY)
    for key, (value, _) in TORCH_ONLY_VALUES.items():
        assert value != config.FIELDS[key].default, key


@pytest.mark.parametrize("key", sorted(TORCH_ONLY_VALUES))
def test_the_numpy_engine_refuses_a_torch_only_key_and_the_torch_engine_takes_it(key):
    value, needs = TORCH_ONLY_VALUES[key]
    with pytest.raises(ConfigError, match=rf"^{key} = .* needs --backend torch"):
        TrainConfig(**{key: value}).validate()
    pytest.importorskip("torch")
    TrainConfig(backend="torch", **{**needs, key: value}).validate()


def test_the_numpy_engine_takes_the_optimizers_chainrule_optim_builds():
    from chainrule.optim import OPTIMIZERS

    for name in config.OPTIMIZERS:
        cfg = TrainConfig(optimizer=name)
        if name in OPTIMIZERS:
            cfg.validate()
        else:
            with pytest.raises(ConfigError, match=f"optimizer = '{name}' needs --backend torch"):
                cfg.validate()
    with pytest.raises(ConfigError, match="precision = 'bf16' needs --backend torch"):
        TrainConfig(precision="bf16").validate()


def test_the_config_names_come_from_the_registries():
    """No list of names is written twice: the config's choices are the registries' keys (read
    without torch, so `chainrule --help` lists them without importing it)."""
    from chainrule.data.registry import SPECS
    from chainrule.optim.schedules import SCHEDULES
    from chainrule.torch_ref.catalog import BATCH_NORM_IMPLS, NETWORKS
    from chainrule.train.registry import ENGINES, OPTIMIZERS

    assert config.OPTIMIZERS == tuple(OPTIMIZERS)
    assert config.MODELS == ("mlp", *NETWORKS)
    assert config.SCHEDULES is SCHEDULES
    assert config.BATCH_NORM_IMPLS == tuple(BATCH_NORM_IMPLS)
    assert config.DATASETS == tuple(SPECS)
    assert config.BACKENDS == ENGINES.keys()


def test_every_name_the_config_offers_is_built_by_an_engine():
    """Each registered name is built by some engine: the registries and the builders agree."""
    pytest.importorskip("torch")
    from chainrule.optim import OPTIMIZERS as NUMPY_OPTIMIZERS
    from chainrule.torch_ref import BATCH_NORM_IMPLS
    from chainrule.torch_ref.cnn import CNN_NAMES
    from chainrule.train import torch_engine

    assert set(config.OPTIMIZERS) == (set(NUMPY_OPTIMIZERS) | set(torch_engine.OPTIMIZERS)) & set(
        config.OPTIMIZERS
    )
    assert set(torch_engine.OPTIMIZERS) <= set(config.OPTIMIZERS)
    assert config.MODELS == ("mlp", *CNN_NAMES)
    assert tuple(BATCH_NORM_IMPLS) == config.BATCH_NORM_IMPLS
    for name in config.OPTIMIZERS:
        TrainConfig(backend="torch", optimizer=name).validate()


def test_config_validate_names_no_engine():
    source = inspect.getsource(TrainConfig.validate)
    assert "backend" not in source and "torch" not in source and "NumPy" not in source


class OnlySGD:
    """An engine whose only rule is its own: plain SGD without momentum."""

    @staticmethod
    def check_config(cfg: TrainConfig) -> None:
        if cfg.optimizer != "sgd" or cfg.momentum:
            raise ConfigError("optimizer: the only-sgd engine steps plain SGD (--momentum 0)")


@pytest.fixture
def only_sgd():
    register_engine("only-sgd", f"{__name__}:OnlySGD")
    yield
    del ENGINES["only-sgd"]


def test_a_registered_engine_validates_its_own_part(only_sgd):
    TrainConfig(backend="only-sgd", momentum=0.0).validate()
    with pytest.raises(ConfigError, match="only-sgd engine steps plain SGD"):
        TrainConfig(backend="only-sgd").validate()  # momentum 0.9 by default
    # the torch-only keys are the NumPy engine's rule, not every other engine's
    TrainConfig(backend="only-sgd", momentum=0.0, micro_batch=8).validate()


def test_an_engine_whose_package_is_missing_leaves_the_message_to_preflight():
    register_engine("ghost", "chainrule_no_such_package.engine:Ghost")
    try:
        TrainConfig(backend="ghost").validate()  # validation runs; the missing package is preflight's
        from chainrule.train.engine import preflight

        with pytest.raises(ImportError):
            preflight(TrainConfig(backend="ghost"))
    finally:
        del ENGINES["ghost"]
