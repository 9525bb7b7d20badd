"""save/load: round trips, and clear errors for missing, damaged or mismatched files."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule.nn as nn
from chainrule.nn import serialization


def _trained_bn_mlp(dtype=np.float32) -> nn.MLP:
    model = nn.MLP(6, [5, 4], 3, batch_norm=True, dropout=0.2, activation="elu", dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):  # move the running statistics away from (0, 1)
        model.forward(rng.standard_normal((16, 6)).astype(dtype) * 2 + 1)
    return model


def _assert_same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_mlp_with_batchnorm_buffers(tmp_path: Path, dtype) -> None:
    model = _trained_bn_mlp(dtype)
    assert not np.allclose(model[1].running_mean, 0)
    model.eval()
    path = tmp_path / "model.npz"
    nn.save(model, path)
    loaded = nn.load(path)
    assert type(loaded) is nn.MLP and loaded.config() == model.config()
    assert not loaded.training
    _assert_same(model, loaded)
    assert loaded.dtype == dtype
    x = np.random.default_rng(1).standard_normal((7, 6)).astype(dtype)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert [p.name for p in loaded.parameters()] == [p.name for p in model.parameters()]


def test_round_trip_nested_sequential(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Linear(4, 6, init="xavier_normal", dtype=np.float64, rng=0),
        nn.LeakyReLU(0.2),
        nn.Sequential(nn.Linear(6, 5, bias=False, dtype=np.float64, rng=1), nn.ELU(0.5), nn.Dropout(0.3)),
        nn.BatchNorm1d(5, eps=1e-3, momentum=0.3, affine=False, dtype=np.float64),
        nn.Tanh(),
        nn.Linear(5, 3, dtype=np.float64, rng=2),
        nn.Softmax(),
    )
    model.forward(np.random.default_rng(0).standard_normal((8, 4)))
    path = tmp_path / "seq.model"  # the name is used as given
    nn.save(model, path)
    assert path.exists() and not (tmp_path / "seq.model.npz").exists()
    loaded = nn.load(str(path))
    _assert_same(model, loaded)
    assert repr(loaded) == repr(model)
    assert loaded[1].negative_slope == 0.2 and loaded[2][1].alpha == 0.5 and loaded[2][2].p == 0.3
    assert loaded[3].momentum == 0.3 and loaded[3].eps == 1e-3 and not loaded[3].affine
    model.eval()
    loaded.eval()
    x = np.random.default_rng(2).standard_normal((3, 4))
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


def test_overwrite_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    nn.save(nn.MLP(3, [2], 2, seed=0), path)
    nn.save(nn.MLP(3, [4], 2, seed=1), path)
    assert nn.load(path).hidden_sizes == [4]
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_interrupted_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.npz"
    nn.save(nn.MLP(3, [2], 2, seed=0), path)
    before = path.read_bytes()

    def crash(f: Any, **arrays: np.ndarray) -> None:
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(serialization.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        nn.save(nn.MLP(3, [7], 2, seed=1), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"], "the temporary file must be removed"


def test_save_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="folder .*no_such_dir does not exist"):
        nn.save(nn.MLP(3, [2], 2), tmp_path / "no_such_dir" / "m.npz")

    class Custom(nn.Module):
        def __init__(self, k: int = 2) -> None:
            self.k = k

        def config(self) -> dict[str, Any]:
            return {"k": self.k}

    with pytest.raises(ValueError, match=r"cannot save a Custom: its type is not registered"):
        nn.save(nn.Sequential(nn.ReLU(), Custom()), tmp_path / "c.npz")
    try:
        serialization.register(Custom)
        nn.save(nn.Sequential(nn.ReLU(), Custom(5)), tmp_path / "c.npz")
        assert nn.load(tmp_path / "c.npz")[1].k == 5
    finally:
        serialization.MODULES.pop("Custom", None)


# ---- loading bad files --------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "good.npz"
    nn.save(_trained_bn_mlp(), path)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model file .*nothing\.npz does not exist"):
        nn.load(tmp_path / "nothing.npz")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a folder, not a model file"):
        nn.load(tmp_path)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=rf"{saved.name}: not a readable model file .*truncated"):
        nn.load(saved)


def test_corrupted_byte_inside_an_entry(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("0.weight.npy")
    offset = info.header_offset + 30 + len(info.filename) + 200  # inside the stored array bytes
    data[offset] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{saved.name}: damaged model file.*(CRC|Bad)"):
        nn.load(saved)


def test_random_bytes_and_other_formats(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ValueError, match="junk.npz: not a readable model file"):
        nn.load(junk)
    text = tmp_path / "weights.txt"
    text.write_text("0.1 0.2 0.3\n")
    with pytest.raises(ValueError, match="weights.txt: not a readable model file"):
        nn.load(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match=r"array.npy: not a chainrule model file \(a single .npy array"):
        nn.load(npy)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(ValueError, match="plain.npz: not a chainrule model file .*no '__chainrule__'"):
        nn.load(plain)


def _rewrite(path: Path, meta_fn=None, drop: str | None = None, replace: dict | None = None) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if meta_fn is not None:
        arrays["__chainrule__"] = np.array(meta_fn(json.loads(str(arrays["__chainrule__"]))))
    if drop:
        del arrays[drop]
    arrays.update(replace or {})
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_wrong_architecture(saved: Path) -> None:
    def bigger(meta: dict) -> str:
        meta["model"]["config"]["hidden_sizes"] = [7, 4]
        return json.dumps(meta)

    _rewrite(saved, bigger)
    with pytest.raises(
        ValueError, match=r"entry '0.weight' has shape \(5, 6\), the architecture expects \(7, 6\)"
    ):
        nn.load(saved)


def test_missing_and_unexpected_entries(saved: Path) -> None:
    _rewrite(saved, drop="1.running_var", replace={"99.weight": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"missing \['1.running_var'\], unexpected \['99.weight'\]"):
        nn.load(saved)


def test_wrong_entry_dtype(saved: Path) -> None:
    _rewrite(saved, replace={"0.weight": np.zeros((5, 6), np.int64)})
    with pytest.raises(ValueError, match="entry '0.weight' has dtype int64"):
        nn.load(saved)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: "{not json", "architecture entry is not valid JSON"),
        (lambda m: json.dumps({**m, "format": "keras"}), "format 'keras'"),
        (lambda m: json.dumps({**m, "version": 99}), "version 99 is not one this chainrule reads"),
        (
            lambda m: json.dumps({**m, "model": {"type": "Conv2d", "config": {}}}),
            "unknown module type 'Conv2d'",
        ),
        (
            lambda m: json.dumps({**m, "model": {"type": "MLP", "config": {"hidden": 3}}}),
            "cannot build MLP from config",
        ),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "model"}), "invalid architecture"),
    ],
)
def test_bad_architecture_entry(saved: Path, edit, message: str) -> None:
    _rewrite(saved, edit)
    with pytest.raises(ValueError, match=rf"{saved.name}: .*{message}"):
        nn.load(saved)


def test_no_pickle_needed(saved: Path) -> None:
    """The file loads with allow_pickle=False: a model file cannot run code."""
    with np.load(saved, allow_pickle=False) as z:
        assert "__chainrule__" in z.files and z["__chainrule__"].dtype.kind == "U"


def test_dropout_rng_states_for_checkpoints() -> None:
    """A resumed run can restore the Dropout mask generators and draw the same masks."""
    from chainrule.nn.dropout import rng_states, set_rng_states

    model = nn.MLP(4, [8, 8], 2, dropout=0.5, dtype=np.float64, seed=0)
    x = np.ones((5, 4))
    model.forward(x)
    states = json.loads(json.dumps(rng_states(model)))  # JSON-able
    assert len(states) == 2
    expected = model.forward(x)
    twin = nn.MLP(**model.config())
    set_rng_states(twin, states)
    np.testing.assert_array_equal(twin.forward(x), expected)
    with pytest.raises(ValueError, match="2 states for a model with 0 Dropout layers"):
        set_rng_states(nn.MLP(4, [8], 2), states)
