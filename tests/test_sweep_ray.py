"""The Ray backend end to end on a local Ray: a 2-trial synthetic sweep (skipped without ray)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from chainrule.sweep import Store, parse_spec, run_sweep  # noqa: E402

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


def test_ray_backend_runs_a_sweep_on_a_local_ray(tmp_path):
    import ray

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
