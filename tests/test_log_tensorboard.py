"""`--log tensorboard`: a tiny synthetic run's event files, read back with TensorBoard's own
`EventAccumulator`, hold the evaluation metrics of metrics.jsonl at their steps, the learning rate,
the final metrics and the hyperparameters (HParams plugin); a paused and resumed run continues
one log with each evaluation once."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2  # noqa: E402

from chainrule.train import read_metrics  # noqa: E402
from chainrule.train.config import TrainConfig  # noqa: E402
from chainrule.train.run import train_run  # noqa: E402

TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "test_loss": "loss/test",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "test_acc": "accuracy/test",
    "lr": "lr",
}


def small(run_dir, **kw) -> TrainConfig:
    keys = dict(
        dataset="synthetic",
        hidden_sizes=[8],
        batch_size=32,
        steps=40,
        eval_every=10,
        train_eval_size=100,
        eval_test=True,  # test metrics at every evaluation too (off by default)
        optimizer="adam",
        lr=0.01,
        momentum=0.0,
        schedule="cosine",  # an lr that moves, so its curve says something
        log=["tensorboard"],
        run_dir=str(run_dir),
    )
    keys.update(kw)
    return TrainConfig(**keys).validate()


def events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return acc


def test_paused_and_resumed_run_logs_every_evaluation_once(tmp_path):
    run = tmp_path / "run"
    cfg = small(run)
    paused = train_run(cfg, quiet=True, plots=False, until_step=20)
    assert paused.status == "paused"
    res = train_run(cfg, resume=run, quiet=True, plots=False)
    assert res.status == "completed"
    evals = read_metrics(run / "metrics.jsonl")
    steps = [e["step"] for e in evals]
    assert steps == [10, 17, 20, 30, 34, 40]  # every 10 steps and each epoch's end (17 steps an epoch)
    acc = events(run)
    assert set(TAGS.values()) <= set(acc.Tags()["scalars"])
    for key, tag in TAGS.items():
        got = acc.Scalars(tag)
        assert [s.step for s in got] == steps, tag
        assert [s.value for s in got] == pytest.approx([e[key] for e in evals], rel=1e-6), tag  # float32
    lrs = [s.value for s in acc.Scalars("lr")]
    assert lrs[0] > lrs[-1] > 0  # the cosine decay is visible
    final = res.summary["final"]
    assert acc.Scalars("final/accuracy_test")[-1].value == pytest.approx(final["test_acc"], rel=1e-6)
    assert acc.Scalars("final/accuracy_test")[-1].step == 40

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["lr"].number_value == pytest.approx(0.01) and hp["optimizer"].string_value == "adam"
    assert hp["hidden_sizes"].string_value == "[8]" and hp["schedule"].string_value == "cosine"
    assert "run_dir" not in hp and "log" not in hp  # where a run goes and how it is logged are not hparams
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    assert end.session_end_info.status == api_pb2.STATUS_SUCCESS


def test_header_says_where_to_look(tmp_path):
    run = tmp_path / "runs" / "one"
    stream = io.StringIO()
    train_run(small(run, steps=5), stream=stream, plots=False)
    assert f"TensorBoard events in {run / 'tensorboard'} (open with: tensorboard --logdir {run.parent})" in (
        stream.getvalue()
    )
    assert [s.step for s in events(run).Scalars("accuracy/val")] == [5]
