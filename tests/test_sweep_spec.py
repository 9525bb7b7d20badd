"""Sweep specs: expansion to trials (grid x random x seeds), stable trial ids, reproducible random
draws, and one clear line naming the file and the key for every malformed spec."""

from __future__ import annotations

import tomllib

import pytest

from chainrule.sweep import SpecError, load_spec, parse_spec, spec_names, spec_text, trial_id
from chainrule.sweep.spec import random_points

BASE = """
name = "t"
[base]
dataset = "synthetic"
hidden_sizes = [8]
epochs = 2
"""


def test_grid_is_the_cartesian_product_times_the_seeds_seed_major():
    text = BASE.replace('name = "t"', 'name = "t"\nseeds = 2')
    spec = parse_spec(text + '[grid]\nlr = [0.1, 0.01]\nactivation = ["relu", "tanh", "sigmoid"]\n', "s.toml")
    assert len(spec.trials) == 12 and spec.seeds == [0, 1]
    assert [t.seed for t in spec.trials] == [0] * 6 + [1] * 6
    assert spec.trials[0].params == {"lr": 0.1, "activation": "relu"}
    assert spec.trials[1].params == {"lr": 0.1, "activation": "tanh"}
    assert len({t.trial_id for t in spec.trials}) == 12
    for t in spec.trials:
        assert t.config["lr"] == t.params["lr"] and t.config["activation"] == t.params["activation"]
        assert t.config["seed"] == t.seed and t.config["name"] == "t" and t.config["dataset"] == "synthetic"
        assert t.config["hidden_sizes"] == [8] and t.config["epochs"] == 2.0


def test_trial_id_depends_only_on_what_changes_training():
    spec = parse_spec(BASE + "[grid]\nlr = [0.1]\n", "a.toml")
    cfg = dict(spec.trials[0].config)
    tid = trial_id(cfg)
    assert tid == spec.trials[0].trial_id and len(tid) == 12
    for key, value in [
        ("name", "other"),
        ("out_dir", "/x"),
        ("run_dir", "/y"),
        ("description", "d"),
        ("data_dir", "/data"),
        ("download", True),
    ]:
        assert trial_id(dict(cfg, **{key: value})) == tid, key
    assert trial_id(dict(cfg, seed=1)) != tid and trial_id(dict(cfg, lr=0.2)) != tid
    # a key at its default adds nothing: a key added by a later chainrule keeps existing ids
    assert trial_id({k: v for k, v in cfg.items() if k != "eval_test"}) == tid
    assert trial_id(dict(cfg, eval_test=True)) != tid
    # the same trial in another spec (other name, more values) has the same id
    other = parse_spec(BASE.replace('"t"', '"u"') + "[grid]\nlr = [0.2, 0.1]\n", "b.toml")
    assert other.trials[1].trial_id == tid


def test_seeds_as_a_list_and_steps_replacing_a_recipe_epochs():
    spec = parse_spec('name = "r"\nseeds = [3, 7]\n[base]\nrecipe = "seed004-mlp"\nsteps = 5\n', "r.toml")
    assert [t.seed for t in spec.trials] == [3, 7]
    cfg = spec.trials[0].config
    assert cfg["steps"] == 5 and cfg["epochs"] is None and cfg["hidden_sizes"] == [100]  # from the recipe
    assert spec.trials[0].params == {}


def test_random_draws_are_reproducible_in_range_and_extendable():
    text = (
        BASE.replace('name = "t"', 'name = "t"\nsweep_seed = 5')
        + """
[random]
n_trials = 6
lr = { log_uniform = [1e-4, 1e-1] }
dropout = { uniform = [0.0, 0.5] }
batch_size = { int_uniform = [16, 64] }
activation = { choice = ["relu", "tanh"] }
"""
    )
    a, b = parse_spec(text, "a.toml"), parse_spec(text, "a.toml")
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    for t in a.trials:
        p = t.params
        assert 1e-4 <= p["lr"] <= 1e-1 and 0 <= p["dropout"] <= 0.5
        assert isinstance(p["batch_size"], int) and 16 <= p["batch_size"] <= 64
        assert p["activation"] in ("relu", "tanh")
        assert t.config["batch_size"] == p["batch_size"]
    assert len({t.params["lr"] for t in a.trials}) == 6
    more = parse_spec(text.replace("n_trials = 6", "n_trials = 9"), "a.toml")
    assert [t.trial_id for t in more.trials[:6]] == [t.trial_id for t in a.trials]  # earlier draws kept
    other_seed = parse_spec(text.replace("sweep_seed = 5", "sweep_seed = 6"), "a.toml")
    assert [t.params for t in other_seed.trials] != [t.params for t in a.trials]
    # adding a key leaves the other keys' draws alone
    d1 = random_points({"lr": {"uniform": [0.0, 1.0]}}, 4, 0)
    d2 = random_points({"lr": {"uniform": [0.0, 1.0]}, "dropout": {"uniform": [0.0, 0.5]}}, 4, 0)
    assert [p["lr"] for p in d1] == [p["lr"] for p in d2]


def test_grid_and_random_combine_each_grid_point_with_each_draw():
    text = (
        BASE
        + "[grid]\nhidden_sizes = [[4], [8, 4]]\n[random]\nn_trials = 3\nlr = { log_uniform = [0.01, 1.0] }\n"
    )
    spec = parse_spec(text, "c.toml")
    assert len(spec.trials) == 6 and spec.swept_keys == ["hidden_sizes", "lr"]
    lrs = [t.params["lr"] for t in spec.trials]
    assert lrs[:3] == lrs[3:]  # the same draws for every grid point
    assert [t.config["hidden_sizes"] for t in spec.trials] == [[4]] * 3 + [[8, 4]] * 3


def test_scale_by_multiplies_by_the_trial_batch_size_and_a_grid_over_recipes():
    spec = parse_spec(spec_text("seed004-grid"), "seed004-grid")
    assert len(spec.trials) == 96 and spec.seeds == [0]
    by = {(t.params["batch_size"], t.params["lr"]): t.config["lr"] for t in spec.trials}
    assert by[(256, 1e-3)] == pytest.approx(0.256) and by[(128, 1e-3)] == pytest.approx(0.128)
    assert by[(128, 1e-5)] == pytest.approx(0.00128)
    assert all(t.config["early_stopping"] and t.config["hidden_sizes"] == [100] for t in spec.trials)
    s3 = parse_spec(spec_text("seed003-lr"), "seed003-lr")
    assert len(s3.trials) == 12
    sig = [t for t in s3.trials if t.params["recipe"] == "seed003-sigmoid"]
    assert len(sig) == 6 and all(t.config["activation"] == "sigmoid" for t in sig)
    assert all(t.config["init"] == "xavier_normal" for t in sig)  # the recipe's own choices are kept


def test_shipped_specs():
    names = spec_names()
    assert {"demo", "seed000-table2", "seed002-lr", "seed003-lr", "seed004-grid"} <= set(names)
    s2 = parse_spec(spec_text("seed002-lr"), "seed002-lr")
    assert len(s2.trials) == 18 and sorted({t.params["lr"] for t in s2.trials}) == [
        0.0001,
        0.001,
        0.003,
        0.01,
        0.03,
        0.1,
    ]
    for name in names:
        assert tomllib.loads(spec_text(name))["description"]
    table2 = parse_spec(spec_text("seed000-table2"), "shipped spec seed000-table2")
    # runs on the torch engine now that it exists: 5 architectures x 2 x 2 x 3 x 3 = 180 trials
    assert len(table2.trials) == 180 and all(t.config["backend"] == "torch" for t in table2.trials)
    with pytest.raises(SpecError, match="did you mean 'seed004-grid'"):
        spec_text("seed004-gird")


BAD = [
    ("lrr = 0.1", "s.toml: unknown key 'lrr'"),
    ("grids = {}", "s.toml: unknown key 'grids' (did you mean 'grid'?)"),
    ("lr = 0.1\n[base]", "training keys go in [base]"),
    ("seeds = 0", "s.toml: seeds = 0 is invalid"),
    ("seeds = [1, 1]", "repeats a seed"),
    ('seeds = "3"', "seeds = '3' should be a count"),
    ("[base]\nlearning_rate = 0.1", "s.toml [base]: unknown key 'learning_rate'"),
    ("[base]\nlr = 'fast'", "s.toml [base]: lr = 'fast' should be float"),
    ("[base]\nseed = 3", "s.toml [base]: seed cannot be set here"),
    ("[base]\nrecipe = 'seed004-mpl'", "unknown recipe 'seed004-mpl' (did you mean 'seed004-mlp'?)"),
    (
        '[base]\nbackend = "jax"',
        "s.toml: trial with the base config: backend = 'jax' is not one of numpy, torch",
    ),
    ("[grid]\nlr = 0.1", "s.toml [grid]: lr = 0.1 should be a non-empty list of values"),
    ("[grid]\nlr = []", "should be a non-empty list"),
    ("[grid]\nlrr = [0.1]", "s.toml [grid]: unknown key 'lrr' (did you mean 'lr'?)"),
    ("[grid]\nhidden_sizes = [100, 50]", "grid values of hidden_sizes are lists"),
    ("[grid]\nactivation = ['relu', 'relux']", "activation = 'relux' is not one of"),
    ("[grid]\ndropout = [0.1, 1.5]", "s.toml: trial with dropout = 1.5: dropout = 1.5 is invalid"),
    ("[grid]\nlr = [0.1, 0.1]", "repeats a value"),
    ("[random]\nlr = { uniform = [0.1, 1.0] }", "s.toml [random]: n_trials is missing"),
    (
        "[random]\nn_trials = 2\nlr = { unifrom = [0.1, 1.0] }",
        "unknown distribution 'unifrom' (did you mean 'uniform'?)",
    ),
    ("[random]\nn_trials = 2\nlr = { log_uniform = [0.0, 1.0] }", "log_uniform needs 0 < low < high"),
    ("[random]\nn_trials = 2\nlr = { uniform = [1.0, 0.1] }", "uniform [low, high] needs low < high"),
    ("[random]\nn_trials = 2\nlr = { uniform = [0.1] }", "uniform needs two numbers"),
    (
        "[random]\nn_trials = 2\nbatch_size = { uniform = [16, 64] }",
        "batch_size is int: uniform draws real numbers",
    ),
    ("[random]\nn_trials = 2\nlr = 0.1", "should be one distribution"),
    ("[random]\nn_trials = 0\nlr = { uniform = [0.1, 1.0] }", "n_trials = 0 should be an integer >= 1"),
    ("[random]\nn_trials = 2\nactivation = { choice = [] }", "choice needs a non-empty list"),
    ("[grid]\nlr = [0.1]\n[random]\nn_trials = 2\nlr = { uniform = [0.1, 1.0] }", "lr is in [grid] too"),
    (
        "[scale_by]\nlr = 'batchsize'",
        "s.toml [scale_by] lr: unknown key 'batchsize' (did you mean 'batch_size'?)",
    ),
    ("[scale_by]\nbatch_size = 'lr'", "only real-valued keys can be scaled"),
    ("[grid]\nlr = [0.1\n", "s.toml: invalid TOML"),
]


@pytest.mark.parametrize(("extra", "needle"), BAD)
def test_malformed_spec_is_one_line_naming_the_file_and_the_key(extra, needle):
    text = 'name = "t"\n' + extra + "\n"
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("s.toml")
    assert needle in msg, msg


def test_missing_name_and_file(tmp_path):
    with pytest.raises(SpecError, match=r"^x.toml: name is missing"):
        parse_spec("seeds = 1\n", "x.toml")
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")
    p = tmp_path / "ok.toml"
    p.write_text(BASE)
    spec = load_spec(p)
    assert spec.source == str(p) and len(spec.trials) == 1 and spec.text == BASE


def test_the_demo_sweep_is_not_saturated():
    """The demo's 16 trials spread: on the tests' easy synthetic set 8 to 12 of them reached 100%
    validation accuracy and "best" was a tie."""
    from chainrule.train import TrainConfig
    from chainrule.train.config import from_dict
    from chainrule.train.prepare import load_raw, prepare
    from chainrule.train.trainer import Trainer

    spec = parse_spec(spec_text("demo"), "demo")
    assert len(spec.trials) == 16
    raw = load_raw(from_dict(spec.trials[0].config, TrainConfig()))
    accs = []
    for t in spec.trials:
        cfg = from_dict(t.config, TrainConfig()).validate()
        trainer = Trainer(cfg, prepare(raw, cfg), None)
        trainer.fit()
        accs.append(trainer.history.evals[-1]["val_acc"])
    assert sum(a == 1.0 for a in accs) <= 1, accs
    assert max(accs) > 0.8 and max(accs) - min(accs) > 0.4, accs
    assert len({round(a, 4) for a in accs}) >= 8, accs  # mostly distinct, not a few shared values
