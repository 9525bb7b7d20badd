"""The newcomer's view of the command line (issue 20): a short `train --help` and a grouped
`--help-all`, `compare --help` listing what compare uses, did-you-mean for mistyped options,
commands, recipes and sweep specs, the seedNNN names explained, the run header."""

from __future__ import annotations

import re

import pytest

from chainrule.cli import COMPARE_FLAGS, build_parser, main
from chainrule.train.config import FIELDS, GROUP_TITLES


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def help_text(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    return capsys.readouterr().out


def sections(text: str) -> dict[str, list[str]]:
    """`title:` -> the flags listed under it (argparse's layout: a title, then indented flags)."""
    out: dict[str, list[str]] = {}
    title = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            out[title] = []
        elif title and line.startswith("  -"):
            out[title] += re.findall(r"--[a-z0-9-]+", line.strip().split("  ")[0])
    return out


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_train_help_is_short_with_examples_and_points_at_help_all(capsys):
    text = help_text(["train", "--help"], capsys)
    lines = text.splitlines()
    assert lines[0] == "usage: chainrule train [options]"  # not a 50-line usage block
    assert len(lines) < 90, len(lines)
    examples = [line for line in lines if line.startswith("  chainrule train")]
    assert len(examples) == 3
    assert "`chainrule train --help-all` lists all" in text
    for common in ("--lr", "--epochs", "--recipe", "--hidden-sizes", "--dataset", "--resume"):
        assert common in text, common
    for rare in ("--lookahead-every", "--muon-ns-steps", "--crop-fill", "--train-eval-size", "--pause-at"):
        assert rare not in text, rare


def test_help_all_lists_every_key_in_its_group(capsys):
    text = help_text(["train", "--help-all"], capsys)
    assert text.splitlines()[0] == "usage: chainrule train [options]"
    groups = sections(text)
    for name, f in FIELDS.items():
        assert flag(name) in groups[GROUP_TITLES[f.metadata["group"]]], name
    torch_only = groups["torch engine and CNNs (--backend torch)"]
    assert "--lookahead-every" in torch_only and "--tta" in torch_only and "--lr" not in torch_only
    assert "--eval-every" in groups["evaluation, early stopping and metrics"]
    assert "--pause-at" in groups["options"] and "--reschedule" in groups["options"]


def test_compare_help_lists_only_what_compare_uses(capsys):
    text = help_text(["compare", "--help"], capsys)
    listed = {f for flags in sections(text).values() for f in flags}
    for name in ("lr", "steps", "dtype", "hidden_sizes", "batch_norm_impl", "seed", "schedule"):
        assert flag(name) in listed, name
    for name in ("model", "tta", "lookahead", "eval_every", "epochs", "dropout", "device", "time_budget"):
        assert flag(name) not in listed, name
    assert set(COMPARE_FLAGS) <= set(FIELDS)


def test_every_flag_still_parses_whatever_the_help_shows():
    args = build_parser().parse_args(
        ["train", "--lookahead-every", "3", "--pause-at", "5", "--reschedule", "--crop-fill", "reflect"]
    )
    assert (args.lookahead_every, args.pause_at, args.reschedule, args.crop_fill) == (3, 5, True, "reflect")
    args = build_parser().parse_args(["compare", "--tta", "1", "--epochs", "2"])  # hidden, still accepted
    assert (args.tta, args.epochs) == (1, 2.0)


@pytest.mark.parametrize(
    "argv, line",
    [
        (["train", "--lrr", "0.1"], "unknown option --lrr (did you mean --lr?)"),
        (["train", "--lrr=0.1"], "unknown option --lrr (did you mean --lr?)"),
        (["train", "--no-eval-tst"], "unknown option --no-eval-tst (did you mean --no-eval-test?)"),
        (["train", "--zzzzzz"], "unknown option --zzzzzz (see `chainrule train --help-all`)"),
        (["compare", "--stpes", "3"], "unknown option --stpes (did you mean --steps?)"),
        (["sweep", "demo", "--wrkers", "2"], "unknown option --wrkers (did you mean --workers?)"),
        (["evaluate", "runs/x", "--jsn"], "unknown option --jsn (did you mean --json?)"),
        (["trian"], "unknown command 'trian' (did you mean 'train'?); `chainrule --help` lists them"),
        (["sweep", "demoo"], "unknown sweep spec 'demoo' (did you mean 'demo'?); `chainrule sweeps` lists"),
        (["train", "--recipe", "uva-defualt"], "unknown recipe 'uva-defualt' (did you mean 'uva-default'?)"),
        (["recipes", "mnist-fats"], "unknown recipe 'mnist-fats' (did you mean 'mnist-fast'?)"),
    ],
)
def test_did_you_mean_in_one_line(argv, line, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file named like a spec here
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"chainrule: error: {line}"), err


@pytest.mark.parametrize("command", ["recipes", "sweeps"])
def test_listings_say_what_the_seed_names_are(command, capsys):
    rc, out, _ = run_cli([command], capsys)
    text = " ".join(out.split())
    assert rc == 0 and "seed000 ... seed004 name the five student reports" in text
    assert "../shared/seeds/" in text and "not the random --seed" in text


def test_run_header_names_the_run_once_when_it_is_named_after_its_data_set(tmp_path, capsys, monkeypatch):
    import chainrule.train.run as run_mod

    def stop(*a, **k):  # right after the header: the training itself is not what is tested here
        raise RuntimeError("stopped after the header")

    monkeypatch.setattr(run_mod, "_config_warnings", stop)
    base = ["train", "--dataset", "synthetic", "--hidden-sizes", "8", "--steps", "2", "--out-dir", tmp_path]
    for name, start in [
        ("synthetic", "chainrule: synthetic 540 train / "),
        ("mine", "chainrule: mine: synthetic 540 train / "),
    ]:
        rc, _, err = run_cli([*base, "--name", name], capsys)
        header = next(line for line in err.splitlines() if " train / " in line)
        assert rc == 1 and header.startswith(start), header
