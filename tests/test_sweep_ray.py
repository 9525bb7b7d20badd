"""The Ray backend end to end on a local Ray: a 2-trial synthetic sweep (skipped without ray),
started with a stale "current cluster" file and RAY_ADDRESS in place (issue 20, item 11); and how
a refused connection to a cluster reads (a stand-in for Ray: no Ray needed); a TPE search on Ray."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from chainrule.sweep import Store, SweepError, parse_spec, run_sweep
from chainrule.sweep.backends import _join_cluster

SPEC = """
name = "ray-tiny"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 32
epochs = 2
[grid]
lr = [0.01, 0.1]
"""


@pytest.fixture
def stale_ray_tmp(monkeypatch, tmp_path):
    """Ray's temp folder (RAY_TMPDIR, short: Ray's socket paths must fit 107 bytes) holding the
    "current cluster" file of a head that died without `ray stop`, RAY_ADDRESS naming it too, and
    HOME in tmp_path (a local Ray writes its auth token to ~/.ray)."""
    base = Path(tempfile.mkdtemp(prefix="cr-ray-", dir="/tmp"))
    (base / "ray").mkdir()
    (base / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("RAY_TMPDIR", str(base))
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_ray_backend_starts_a_fresh_local_ray_despite_a_stale_cluster_file(tmp_path, stale_ray_tmp):
    ray = pytest.importorskip("ray")
    spec = parse_spec(SPEC, "ray-tiny.toml")
    out = tmp_path / "out"
    try:
        result = run_sweep(spec, out, workers=2, backend="ray", quiet=True, report=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert {k: v for k, v in result.counts.items() if v} == {"completed": 2} and result.ran == 2
    assert set(result.counts) == {"pending", "running", "paused", "completed", "pruned", "failed"}
    assert not ray.is_initialized()  # the local Ray it started is shut down again
    assert any(p.name.startswith("session_") for p in (stale_ray_tmp / "ray").iterdir())  # it ran there
    with Store(out / "sweep.db", readonly=True) as store:
        trials = store.trials()
        (session,) = store.sessions()
    assert session["backend"] == "ray" and session["workers"] == 2
    assert {t["params"]["lr"] for t in trials} == {0.01, 0.1}
    for t in trials:
        assert t["val_acc"] is not None and t["attempts"] == 1
        assert (out / "trials" / t["trial_id"] / "model.npz").is_file()
    assert len((out / "trials.csv").read_text().splitlines()) == 3
    # resuming a finished Ray sweep runs nothing (and starts no Ray)
    again = run_sweep(None, out, backend="ray", quiet=True, report=False)
    assert again.ran == 0 and again.counts["completed"] == 2 and not ray.is_initialized()


def test_a_tpe_search_runs_on_ray(tmp_path, stale_ray_tmp):
    """TPE asks and tells through the same loop on any pool: `chainrule sweep --backend ray` (its own
    process, so its own fresh local Ray, as a user runs it), two trials at a time."""
    pytest.importorskip("ray")
    pytest.importorskip("optuna")
    spec = tmp_path / "ray-tpe.toml"
    text = SPEC.replace('name = "ray-tiny"', 'name = "ray-tpe"').split("[grid]")[0]
    text += '[random]\nlr = { log_uniform = [1e-3, 0.3] }\n[search]\nsampler = "tpe"\nn_trials = 3\n'
    spec.write_text(text + "n_startup_trials = 2\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "chainrule.cli", "sweep", str(spec), "--out", str(out), "--backend", "ray"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd += ["--workers", "2", "--quiet", "--no-report"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0 and "could not start a local Ray: Timed out" in proc.stderr:
        pytest.skip(f"Ray could not start here in time: {proc.stderr.strip().splitlines()[-1][:200]}")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    with Store(out / "sweep.db", readonly=True) as store:
        trials = store.trials()
        (session,) = store.sessions()
    assert session["backend"] == "ray" and [t["status"] for t in trials] == ["completed"] * 3
    assert len({t["params"]["lr"] for t in trials}) == 3 and all(t["val_acc"] is not None for t in trials)


class _AuthenticationError(Exception):
    pass


class FakeRay:
    """`ray.init(address=...)` as Ray 2.60's client behaves: its C++ side logs each attempt on file
    descriptor 2, then it raises (or connects)."""

    exceptions = SimpleNamespace(AuthenticationError=_AuthenticationError)

    def __init__(self, log: str, error: Exception | None) -> None:
        self.log, self.error, self.up = log, error, False

    def init(self, address: str, **kw: object) -> None:
        os.write(2, self.log.encode())
        if self.error is not None:
            raise self.error
        self.up = True

    def is_initialized(self) -> bool:
        return self.up

    def shutdown(self) -> None:
        self.up = False


REFUSED = "[2026-12-01 23:20:10,045 W 1 1] gcs_client.cc:210: Failed to get cluster ID from GCS server: "
REFUSED += "Unauthenticated: RPC error: InvalidAuthToken: Authentication token is missing or incorrect\n"


def test_a_cluster_that_refuses_the_missing_token_is_one_line_naming_the_fix(monkeypatch, tmp_path, capfd):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    fake = FakeRay(REFUSED * 15, ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"))
    with pytest.raises(SweepError) as e:
        _join_cluster(fake, "10.0.0.1:6379", {})
    msg = str(e.value)
    assert "\n" not in msg and "10.0.0.1:6379 uses token authentication" in msg
    assert "RAY_AUTH_MODE=token" in msg and str(tmp_path / ".ray" / "auth_token") in msg
    assert "RAY_AUTH_MODE=disabled" in msg and "ray get-auth-token" in msg
    assert capfd.readouterr().err == ""  # Ray's 15 retry lines are not shown


def test_a_cluster_that_refuses_this_token_names_the_token_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    with pytest.raises(
        SweepError, match=r"refused this process's token .* the token in .*tok \(RAY_AUTH_TOKEN_PATH\)"
    ):
        _join_cluster(FakeRay(REFUSED, ConnectionError("Failed to connect")), "h:1", {})
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")  # token mode and no token at all: Ray's own error
    with pytest.raises(SweepError, match=r"RAY_AUTH_MODE=token but this process has no Ray token"):
        _join_cluster(FakeRay("", _AuthenticationError("no token")), "h:1", {})


def test_other_connection_failures_are_one_line_and_warnings_pass_through(capfd):
    with pytest.raises(SweepError, match=r"^cannot join the Ray cluster at h:1: Failed to connect \(is it"):
        _join_cluster(FakeRay("some log\n", ConnectionError("Failed to connect")), "h:1", {})
    assert capfd.readouterr().err == ""
    fake = FakeRay("a warning from Ray\n", None)
    _join_cluster(fake, "h:1", {})
    assert fake.up and capfd.readouterr().err == "a warning from Ray\n"
