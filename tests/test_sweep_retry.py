"""`--retry-failed` on a trial whose checkpoint is damaged restarts it from step 0 (and says so)
instead of failing on the same file forever (issue 20, item 7)."""

from __future__ import annotations

from chainrule.cli import main
from chainrule.sweep import Store

SPEC = """
name = "retry"
seeds = 1
[base]
dataset = "synthetic"
hidden_sizes = [8]
batch_size = 64
epochs = 1
schedule = "constant"
[grid]
lr = [0.01, 0.05]
"""


def test_retry_failed_restarts_a_trial_with_a_damaged_checkpoint(tmp_path, capsys):
    spec, out = tmp_path / "s.toml", tmp_path / "sw"
    spec.write_text(SPEC)
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet", "--no-report"]) == 0
    with Store(out / "sweep.db") as store:
        victim = store.trials()[0]["trial_id"]
        trial = out / "trials" / victim
        (trial / "summary.json").unlink()  # as if it died mid-way, with a checkpoint that is now garbage
        (trial / "checkpoint.npz").write_bytes(b"\0" * 100)
        store.mark_failed(victim, "CheckpointError: damaged")
    capsys.readouterr()
    rc = main(["sweep", "--resume", str(out), "--retry-failed", "--workers", "1", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"trial {victim}: its checkpoint was unreadable" in err and "restarted from step 0" in err
    # each said once (issue 20, item 7 saw "continues from its checkpoint" twice)
    assert err.count(f"trial {victim} continues from its checkpoint") == 1, err
    assert err.count("its checkpoint was unreadable") == 1, err
    with Store(out / "sweep.db") as store:
        assert {t["status"] for t in store.trials()} == {"completed"}
