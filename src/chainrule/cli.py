"""The `chainrule` command: train, evaluate, predict, recipes.

    chainrule train                                  # the tuned MNIST default
    chainrule train --recipe uva-default --quiet      # a seed's setup (chainrule recipes lists them)
    chainrule train --config my.toml --lr 0.01        # a config file, a flag overriding it
    chainrule train --recipe seed003-relu --print-config > mine.toml
    chainrule train --resume runs/20250101-120000-mnist
    chainrule evaluate runs/20250101-120000-mnist
    chainrule predict runs/20250101-120000-mnist digit.png   # dark on white paper: inverted, said

Every field of `chainrule.train.TrainConfig` is a flag of `train`. Bad flags or values print one
line on stderr and exit with status 2; other failures print one line and exit with 1.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Collection, Sequence
from typing import Any, NoReturn

from chainrule import layout
from chainrule._io import did_you_mean, one_line
from chainrule.train.config import (
    BACKENDS,
    FIELDS,
    GROUP_TITLES,
    ConfigError,
    TrainConfig,
    dumps,
    field_kind,
    load_recipe,
    load_toml,
    optional,
    recipe_names,
    recipe_text,
    resolve,
    split_names,
)

RESUME_OVERRIDES = {"epochs", "steps", "data_dir"}
# `chainrule train --help` lists these; `--help-all` every key, grouped
COMMON_FLAGS = (
    "dataset data_dir hidden_sizes activation dropout optimizer lr momentum schedule batch_size epochs "
    "steps backend model seed out_dir"
).split()
# what `compare` uses (it builds two MLPs on the CPU and runs --steps steps): its --help lists only
# these; the other train keys are still accepted (a config file may hold them) and change nothing
COMPARE_FLAGS = [
    n
    for n, f in FIELDS.items()
    if f.metadata["group"] in ("data", "model", "optim", "schedule")
    and n != "dropout"
    and not n.startswith("muon_")
] + ["batch_norm_impl", "threads", "batch_size", "steps", "seed", "name", "out_dir"]
# what the recipe and sweep names seed000-... mean (`chainrule recipes`, `chainrule sweeps`)
SEED_NAMES = (
    "seed000 ... seed004 name the five student reports of a first deep-learning assignment that "
    "chainrule reproduces (docs/results.md compares with them; the texts are in ../shared/seeds/), "
    "not the random --seed."
)


TRAIN_EXAMPLES = """examples:
  chainrule train                               # the tuned MNIST default (>= 98% test accuracy)
  chainrule train --recipe mnist-best --epochs 5   # a recipe (`chainrule recipes`), one key changed
  chainrule train --lr 0.05 --print-config > my.toml   # the config as TOML, for --config my.toml
"""


class UsageError(Exception):
    """Bad command-line usage: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            raise UsageError(_unknown_arguments(self, ns, extra))
        return ns


def _unknown_arguments(parser: argparse.ArgumentParser, ns: argparse.Namespace, extra: list[str]) -> str:
    """`unknown option --lrr (did you mean --lr?)`: the first unknown option, matched against the
    options of the subcommand it was given to."""
    sub = parser
    for action in parser._actions:  # the subcommand's own parser, whose options the user meant
        if isinstance(action, argparse._SubParsersAction) and getattr(ns, "command", None) in action.choices:
            sub = action.choices[ns.command]
    options = [o for action in sub._actions for o in action.option_strings]
    for word in extra:
        if word.startswith("--") or (word.startswith("-") and not word[1:2].isdigit()):
            flag = word.split("=", 1)[0]
            hint = did_you_mean(flag, options, quote=False) or f" (see `{sub.prog} --help-all`)"
            return f"unknown option {flag}{hint}"
    return f"unrecognized arguments: {' '.join(extra)} (see `{sub.prog} --help`)"


def _number(kind: str, name: str, opt: bool) -> Any:
    def parse(text: str) -> Any:
        if opt and text.lower() == "none":
            return None
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind} value: {text!r}") from None

    parse.__name__ = kind
    return parse


def _int_item(text: str) -> list[int]:
    """`--hidden-sizes 1000 300`, `--hidden-sizes 1000,300` and `--hidden-sizes "[1000, 300]"` all work."""
    parts = [p for p in text.replace("[", " ").replace("]", " ").replace(",", " ").split() if p]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid hidden size {text!r} (expected integers)") from None


def _add_config_flags(p: argparse.ArgumentParser, listed: Collection[str] | None = None) -> None:
    """Every TrainConfig key as a flag, in the groups of GROUP_TITLES; the help lists only the keys in
    `listed` (default: all), the others are accepted all the same."""
    groups: dict[str, Any] = {}
    for name, f in FIELDS.items():
        group_key = f.metadata["group"]
        if group_key not in groups:
            groups[group_key] = p.add_argument_group(GROUP_TITLES[group_key])
        g = groups[group_key]
        flag = "--" + name.replace("_", "-")
        kind = field_kind(name)
        default = f.default_factory() if kind == "list" else f.default  # type: ignore[misc]
        shown = "" if default in (None, "") else f" [default: {default}]"
        help_ = f"{f.metadata['help']}{shown}".replace("%", "%%")
        if listed is not None and name not in listed:
            help_ = argparse.SUPPRESS
        kw: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_}
        if kind == "bool":
            g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif kind == "list":
            g.add_argument(flag, nargs="*", type=_int_item, metavar="N", **kw)
        elif kind == "names":  # `--log tensorboard mlflow`, `--log tensorboard,mlflow`, or the flag twice
            metavar = "{" + ",".join(f.metadata["choices"]) + "}"
            g.add_argument(flag, nargs="*", action="extend", type=split_names, metavar=metavar, **kw)
        elif kind in ("int", "float"):
            g.add_argument(flag, type=_number(kind, name, optional(name)), metavar=kind.upper(), **kw)
        elif f.metadata.get("choices"):
            g.add_argument(
                flag, choices=f.metadata["choices"], metavar="{" + ",".join(f.metadata["choices"]) + "}", **kw
            )
        else:
            g.add_argument(flag, metavar="TEXT", **kw)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chainrule")
    except PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
        return "(not installed)"


def build_parser(help_all: bool = False) -> argparse.ArgumentParser:
    """The parser of every subcommand; `help_all`: `train --help` lists every option, grouped
    (`chainrule train --help-all`), instead of the common ones."""
    parser = _Parser(
        prog="chainrule",
        description="Train, evaluate and use MLPs and CNNs (NumPy or PyTorch engine) on MNIST, "
        "Fashion-MNIST and CIFAR-10.",
        epilog="`chainrule train` with no flags trains the tuned MNIST default (>= 98% test accuracy).",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {_version()}")
    sub = parser.add_subparsers(
        dest="command",
        parser_class=_Parser,
    )
    sub.required = True

    _add_train_parser(sub, help_all)
    _add_model_use_parsers(sub)
    _add_compare_parser(sub)
    r = sub.add_parser(
        "recipes",
        help="list the shipped recipes, or print one",
        description="List the shipped recipes, or print the TOML of one. " + SEED_NAMES,
    )
    r.add_argument("name", nargs="?", help="recipe to print")
    _add_sweep_parsers(sub)
    _add_grade_parser(sub)
    _add_runs_parser(sub)
    _add_cache_parser(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"  # the subcommands, in the order they were added
    return parser


def _add_train_parser(sub: Any, help_all: bool) -> None:
    n_options = len(FIELDS) + 8  # the keys, and --recipe ... --quiet, --help-all
    t = sub.add_parser(
        "train",
        help="train a model and write a run folder",
        usage="%(prog)s [options]",
        description="Train a model and write a run folder (config, metrics, model, plots, "
        f"{layout.REPORT}).\n"
        "Values come from the defaults, then --recipe, then --config, then the flags.",
        epilog=TRAIN_EXAMPLES
        + (
            ""
            if help_all
            else f"\nThese are the common options; `chainrule train --help-all` lists all {n_options}, "
            "grouped."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--help-all", action="help", help="every option, grouped (data, model, optimizer, ...)")
    t.add_argument(
        "--recipe", metavar="NAME", help="start from a shipped recipe (`chainrule recipes` lists them)"
    )
    t.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (flat keys as in --print-config); flags override it",
    )
    t.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    t.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in folder RUN from its checkpoint "
        "(only --epochs, --steps, --data-dir and --quiet may be given with it)",
    )
    t.add_argument(
        "--reschedule",
        action="store_true",
        help="with --resume and more --steps/--epochs: rebuild a cosine or triangle schedule for the new "
        "length (default: keep the old one, whose lr stays at its final value)"
        if help_all
        else argparse.SUPPRESS,
    )
    t.add_argument(
        "--pause-at",
        type=int,
        metavar="STEP",
        help="stop at this step with a checkpoint, to continue later with --resume"
        if help_all
        else argparse.SUPPRESS,
    )
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar; print only the final line")
    _add_config_flags(t, None if help_all else COMMON_FLAGS)


def _add_model_use_parsers(sub: Any) -> None:
    """`evaluate` and `predict`: a finished run's model, computed by the engine `--backend` names."""
    e = sub.add_parser(
        "evaluate",
        help="print the test metrics of a finished run",
        description=f"Load RUN/{layout.MODEL} and print its test loss and accuracy.",
    )
    p = sub.add_parser(
        "predict",
        help="classify image files with a trained run",
        description="Classify PNG/JPEG images with RUN's model; prints the class and top probabilities.",
    )
    for cmd, json_help in ((e, "print JSON (with per-class accuracy)"), (p, "print JSON")):
        cmd.add_argument("run", metavar="RUN", help="run folder")
        cmd.add_argument("--json", action="store_true", help=json_help)
        cmd.add_argument(
            "--backend", choices=BACKENDS, default="numpy", help="engine that computes the logits"
        )
    e.add_argument("--data-dir", help="data folder (default: as for train)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files")
    p.add_argument("--top", type=int, default=3, help="how many classes to list per image [default: 3]")
    p.add_argument(
        "--invert",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="invert gray levels (dark digits on white paper -> MNIST style) [default: for MNIST and "
        "Fashion-MNIST runs, images whose border is brighter than their centre, with a note]",
    )


def _add_compare_parser(sub: Any) -> None:
    c = sub.add_parser(
        "compare",
        help="train the NumPy and the torch engine side by side and compare them step by step",
        description="Build the NumPy and the torch MLP from the same config and seed, feed both the same "
        "batches, and record per step each engine's loss and the largest relative difference of loss and "
        f"parameters: {layout.COMPARE_CSV}, {layout.COMPARE_PNG} and {layout.SUMMARY} in "
        "<out-dir>/<time>-compare-<name>/. "
        "Takes the train flags; --steps defaults to 100. Use --dtype float64 to see agreement to "
        "about 1e-15; float32 shows the rounding drift. Dropout is refused (the engines draw different "
        "masks). Listed here are the keys compare uses; the other train flags are accepted and change "
        "nothing.",
        usage="%(prog)s [options]",
    )
    c.add_argument("--recipe", metavar="NAME", help="start from a shipped recipe")
    c.add_argument("--config", metavar="FILE", help="TOML config file; flags override it")
    c.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    _add_config_flags(c, COMPARE_FLAGS)


def _add_cache_parser(sub: Any) -> None:
    k = sub.add_parser(
        "cache",
        help="list the cached data sets with their sizes (--clear removes them)",
        description="List what chainrule keeps in its cache folders (the platform's cache folder, "
        "$CHAINRULE_CACHE): downloaded data sets and their decoded arrays, with sizes. --clear removes "
        "them; $CHAINRULE_DATA, ../shared/datasets and --data-dir folders are never touched.",
    )
    k.add_argument("--clear", action="store_true", help="remove everything listed (asks first)")
    k.add_argument("-y", "--yes", action="store_true", help="with --clear: remove without asking")


def _add_grade_parser(sub: Any) -> None:
    g = sub.add_parser(
        "grade",
        help="grade a student's backprop modules against chainrule's reference",
        description="Grade a student's modules (a file, a folder, or a folder of submissions) against "
        "chainrule's verified reference: forward, backward, finite differences, stability, in-place "
        "changes, shapes, optimizer steps. The student's code runs in child processes with time and "
        "memory limits.",
    )
    g.add_argument(
        "path", nargs="?", metavar="FILE_OR_FOLDER", help="a submission, or a folder of submissions"
    )
    g.add_argument(
        "--interface",
        required=True,
        metavar="{uva2018,uva2022,cs231n,chainrule}",
        help="the assignment's layout",
    )
    g.add_argument("--reference", action="store_true", help="grade chainrule's own reference (full marks)")
    g.add_argument("--rubric", metavar="TOML", help="points, visibility and the set of tests")
    g.add_argument(
        "--results", metavar="OUT.json", help="write Gradescope's results.json (a folder for several)"
    )
    g.add_argument("--html", metavar="OUT.html", help="write a self-contained report (a folder for several)")
    g.add_argument("--summary", metavar="OUT.csv", help="write one row per submission: scores per test")
    g.add_argument(
        "--time-limit", type=float, metavar="S", help="seconds per class or function [default: 10]"
    )
    g.add_argument("--memory-mb", type=int, metavar="MB", help="memory limit of the child [default: 2048]")
    g.add_argument("--seed", type=int, default=0, help="seed of the random test inputs [default: 0]")
    g.add_argument("--failures-only", action="store_true", help="list only the failed tests")


def _add_runs_parser(sub: Any) -> None:
    r = sub.add_parser(
        "runs",
        help="list run folders as a table (and `runs compare` to put several side by side)",
        description="List the runs in DIR (default runs/): a run folder is one run, a sweep folder lists its "
        "trials, any other folder the runs and sweeps in it. Columns: name, status, data set, model, the "
        "config keys that differ between the listed runs, final val/test accuracy, training time, date.",
        epilog="chainrule runs compare RUN RUN ... --out FILE.html: one page with their curves overlaid, "
        "the config diff and the final metrics side by side (see `chainrule runs compare --help`).",
    )
    r.add_argument("dirs", nargs="*", metavar="DIR", help="run, sweep or parent folders [default: runs]")
    r.add_argument("--sort", metavar="KEY", help="sort by a column or config key (ascending)")
    r.add_argument("--reverse", action="store_true", help="sort descending")
    r.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs whose KEY is VALUE (also !=, >, >=, <, <=); repeat to combine",
    )
    r.add_argument("--json", action="store_true", help="print a JSON list (every run with its config)")


def build_runs_compare_parser() -> argparse.ArgumentParser:
    c = _Parser(
        prog="chainrule runs compare",
        description="Write one self-contained HTML page comparing run folders: loss, accuracy and "
        "learning-rate curves overlaid, the config keys that differ, and the final metrics side by side.",
    )
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders (two or more)")
    c.add_argument("--out", required=True, metavar="FILE.html", help="the page to write")
    return c


def _add_sweep_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "sweep",
        help="run a grid/random search over training configs (with repeated seeds)",
        description="Run every trial of a sweep spec (TOML) into DIR: "
        f"{layout.TRIALS_DIR}/<id>/ run folders, {layout.SWEEP_DB} (SQLite), {layout.TRIALS_CSV} and "
        f"{layout.REPORT}. A DIR that holds the same sweep is extended: finished trials never run again. "
        "`chainrule sweeps` lists the shipped specs.",
    )
    s.add_argument("spec", nargs="?", metavar="SPEC", help="spec file, or the name of a shipped spec")
    s.add_argument("--out", metavar="DIR", help="sweep folder [default: sweeps/<name>]")
    s.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR after a crash or Ctrl-C")
    s.add_argument("--workers", type=int, metavar="N", help="trials at once [default: number of cores]")
    from chainrule.sweep.backends import POOLS

    s.add_argument(
        "--backend", choices=tuple(POOLS), default="local", help="where trials run [default: local]"
    )
    s.add_argument(
        "--address", metavar="ADDR", help="Ray cluster to join (host:port or auto) [default: a local Ray]"
    )
    s.add_argument("--retry-failed", action="store_true", help="run the failed trials again")
    s.add_argument(
        "--trial-reports", action="store_true", help=f"plots and {layout.REPORT} in every trial folder too"
    )
    s.add_argument("--no-report", action="store_true", help=f"do not write {layout.REPORT} at the end")
    s.add_argument(
        "-q", "--quiet", action="store_true", help="no progress display; print only the final line"
    )

    r = sub.add_parser(
        "sweep-report",
        help="(re)write the report of a sweep",
        description=f"Write DIR/{layout.REPORT} and its PNGs from DIR/{layout.SWEEP_DB} and the trial "
        "folders.",
    )
    r.add_argument("dir", metavar="DIR", help="sweep folder")
    r.add_argument("--curves-key", metavar="KEY", help="swept key that groups the learning curves")

    ls = sub.add_parser(
        "sweeps",
        help="list the shipped sweep specs, or print one",
        description="List the shipped sweep specs (the seeds' studies), or print the TOML of one.",
    )
    ls.add_argument("name", nargs="?", help="spec to print")


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then --recipe, then --config, then the flags given on the command line."""
    flags = {k: v for k, v in vars(args).items() if k in FIELDS}
    # `--hidden-sizes 1000 300` or `1000,300`, `--log tensorboard mlflow` or `tensorboard,mlflow`
    for key in [k for k in flags if field_kind(k) in ("list", "names")]:
        flags[key] = [h for part in flags[key] for h in part]
    if getattr(args, "resume", None):
        extra = sorted(set(flags) - RESUME_OVERRIDES)
        if extra or args.recipe or args.config:
            given = (
                ["--" + k.replace("_", "-") for k in extra]
                + (["--recipe"] if args.recipe else [])
                + (["--config"] if args.config else [])
            )
            raise UsageError(
                f"--resume continues a run with its own config; {', '.join(given)} cannot be given with it "
                "(only --epochs, --steps, --data-dir, --quiet)"
            )
        from pathlib import Path

        if not layout.is_run_folder(args.resume):
            raise UsageError(f"--resume {args.resume}: not a run folder (no {layout.CONFIG} there)")
        return resolve(changes=flags, base=load_toml(Path(args.resume) / layout.CONFIG))
    return resolve(args.recipe, args.config, flags)


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from chainrule._interrupt import stop_on_signals, stop_requested
    from chainrule.train.run import train_run

    cfg = resolve_config(args)
    if args.print_config:
        sys.stdout.write(dumps(cfg))
        return 0
    if args.reschedule and not args.resume:
        raise UsageError("--reschedule is for --resume RUN with more --steps or --epochs")
    if args.pause_at is not None and args.pause_at < 1:
        raise UsageError(f"--pause-at must be a step >= 1, got {args.pause_at}")
    with stop_on_signals():  # Ctrl-C / SIGTERM: stop after the current step with its checkpoint
        result = train_run(
            cfg,
            resume=args.resume,
            quiet=args.quiet,
            until_step=args.pause_at,
            command="chainrule " + shlex.join(argv),
            reschedule=args.reschedule,
        )
        late_signal = stop_requested() and result.status != "interrupted"  # during the final evaluation
    final = result.summary["final"]
    # the test split's numbers; without a test split (an image tree with only train/) the validation's
    key, label = ("test", "test") if "test_acc" in final else ("val", "validation")
    scores = (
        f"; {label} accuracy {100 * final[key + '_acc']:.2f}% (loss {final[key + '_loss']:.4f})"
        if key + "_acc" in final
        else ""
    )
    took = f"training {result.summary['train_time_s']:.1f} s"
    line = f"{result.message}{scores}; {took}; run folder {result.run_dir}"
    if result.status == "diverged":
        print(f"chainrule: error: {result.message}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        print(
            f"chainrule: {result.message}; continue with: chainrule train --resume {result.run_dir}",
            file=sys.stderr,
        )
        return 130
    if result.status == "paused":
        print(f"{line}; continue with: chainrule train --resume {result.run_dir}")
        return 130 if late_signal else 0
    print(line)
    if late_signal:
        print(
            "chainrule: interrupted during the final evaluation; the run's files are complete",
            file=sys.stderr,
        )
        return 130
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from chainrule.train.compare import compare_engines, summary_line, write_comparison

    steps_given = "steps" in vars(args) and args.steps is not None
    if "backend" not in vars(args):
        args.backend = "torch"  # compare runs both; torch-only flags (--batch-norm-impl) are valid here
    cfg = resolve_config(args)
    c = compare_engines(cfg, steps=cfg.steps if steps_given and cfg.steps else 100)
    folder = write_comparison(c, cfg.out_dir)
    print(f"{summary_line(c)}; files in {folder}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from chainrule.train.run import evaluate_run

    res = evaluate_run(args.run, data_dir=args.data_dir, backend=args.backend)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(
            f"{res['run']}: {res['dataset']} test set ({res['n']} images): "
            f"accuracy {100 * res['test_acc']:.2f}%, loss {res['test_loss']:.4f}"
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from chainrule.train.run import predict_run

    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    res = predict_run(args.run, args.images, top=args.top, invert=args.invert, backend=args.backend)
    for r in res:
        if r["inverted"] and args.invert is None:
            print(
                f"chainrule: {r['image']}: dark on a light background (its border is brighter than its "
                "centre): inverted to the data set's light-on-dark (--no-invert keeps it as it is)",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    for r in res:
        tops = "  ".join(f"{c} {100 * p:.1f}%" for c, p in r["top"])
        print(f"{r['image']}: {r['class']}   ({tops})")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    if args.name:
        sys.stdout.write(recipe_text(args.name))
        return 0
    for name in recipe_names():
        desc = load_recipe(name).description
        print(f"{name:20s} {desc}")
    print(f"\n{SEED_NAMES}\n`chainrule recipes NAME` prints one, `chainrule train --recipe NAME` trains it.")
    return 0


def cmd_sweeps(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`sweep`, `sweep-report` and `sweeps`."""
    from pathlib import Path

    from chainrule import sweep

    if args.command == "sweeps":
        if args.name:
            sys.stdout.write(sweep.spec_text(args.name))
            return 0
        import tomllib

        for name in sweep.spec_names():  # listed without checks: a spec may need what is not here yet
            print(f"{name:22s} {tomllib.loads(sweep.spec_text(name)).get('description', '')}")
        print(f"\n{SEED_NAMES}\n`chainrule sweeps NAME` prints one; `chainrule sweep NAME` runs it.")
        return 0
    if args.command == "sweep-report":
        path = sweep.write_sweep_report(args.dir, curves_key=args.curves_key)
        print(f"{sweep.summary_line(args.dir)}; report {path}")
        return 0
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    from chainrule.sweep.backends import POOLS

    if args.address and not POOLS[args.backend].takes_address:
        takes = " or ".join(name for name, pool in POOLS.items() if pool.takes_address)
        raise UsageError(f"--address is for --backend {takes}")
    if bool(args.spec) == bool(args.resume):
        raise UsageError("give a SPEC to run, or --resume DIR to continue a sweep (not both)")
    if args.resume:
        if args.out:
            raise UsageError("--out cannot be given with --resume (the sweep stays in its folder)")
        if not layout.is_sweep_folder(args.resume):
            raise UsageError(f"--resume {args.resume}: not a sweep folder (no {layout.SWEEP_DB} there)")
        spec, out = None, args.resume
    else:
        path = Path(args.spec)
        if path.is_file() or path.suffix == ".toml" or len(path.parts) > 1:
            spec = sweep.load_spec(path)
        else:  # the name of a shipped spec (an unknown one: "did you mean ...", from spec_text)
            spec = sweep.parse_spec(sweep.spec_text(args.spec), source=f"shipped spec {args.spec}")
        out = args.out
    result = sweep.run_sweep(
        spec,
        out,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        quiet=args.quiet,
        retry_failed=args.retry_failed,
        report=not args.no_report,
        trial_reports=args.trial_reports,
    )
    if result.interrupted:
        print(
            f"chainrule: sweep interrupted; continue with: chainrule sweep --resume {result.out_dir}",
            file=sys.stderr,
        )
        return 130
    line = sweep.summary_line(result.out_dir)
    print(line + (f"; report {result.report}" if result.report else f"; folder {result.out_dir}"))
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from chainrule.grade import command, interface_names

    if args.interface not in interface_names():
        raise UsageError(f"--interface {args.interface!r}: choose one of {', '.join(interface_names())}")
    return command.run(
        args.path,
        args.interface,
        reference=args.reference,
        rubric=args.rubric,
        results=args.results,
        html=args.html,
        summary=args.summary,
        time_limit=args.time_limit,
        memory_mb=args.memory_mb,
        seed=args.seed,
        failures_only=args.failures_only,
    )


def cmd_runs(args: argparse.Namespace) -> int:
    from chainrule import runs

    records = runs.select(runs.scan(args.dirs or ["runs"]), args.filter, args.sort, args.reverse)
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=1))
    elif records:
        print(runs.format_table(records))
    else:
        print(f"no runs in {', '.join(args.dirs or ['runs'])}" + (" match" if args.filter else ""))
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from chainrule import runs

    path = runs.compare_runs(args.runs, args.out)
    print(f"{len(args.runs)} runs compared: {path}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from chainrule._io import human_size
    from chainrule.data import cache

    if args.yes and not args.clear:
        raise UsageError("--yes is for --clear")
    items = cache.cache_contents()
    total = sum(i.bytes for i in items)
    folders = ", ".join(str(f) for f in cache.cache_folders())
    if not args.clear:
        print(f"chainrule's cache: {human_size(total)} in {len(items)} items ({folders})")
        for i in items:
            where = str(i.paths[0]) if len(i.paths) == 1 else f"{i.paths[0].parent}/ ({len(i.paths)} folders)"
            print(f"  {human_size(i.bytes):>10}  {i.what:36s} {where}")
        legacy = cache.legacy_cache_dir()
        if legacy is not None:
            print(f"{legacy} is chainrule's older cache folder: its data sets are still read")
        if items:
            print("`chainrule cache --clear` removes them (never $CHAINRULE_DATA or a --data-dir)")
        return 0
    if not items:
        print(f"chainrule's cache is empty ({folders})")
        return 0
    what = f"{len(items)} items, {human_size(total)}, from {folders}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"--clear would remove {what}: add --yes (there is no terminal to ask)")
        if input(f"remove {what}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 0
    cache.clear_cache(items)
    print(f"removed {what}")
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. SIGTERM (`kill`, a cluster scheduler preempting the job) stops like Ctrl-C:
    a training run finishes its current step, saves a checkpoint of it and prints how to resume (a
    second signal stops at once, keeping the last checkpoint); a sweep leaves its running trials to
    `--resume`."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(help_all="--help-all" in argv)
    try:
        commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if argv and not argv[0].startswith("-") and argv[0] not in commands:  # `chainrule trian`
            hint = did_you_mean(argv[0], commands)
            raise UsageError(f"unknown command {argv[0]!r}{hint}; `chainrule --help` lists them")
        if argv[:2] == ["runs", "compare"]:  # a subcommand of `runs`, whose other positionals are folders
            return cmd_runs_compare(build_runs_compare_parser().parse_args(argv[2:]))
        args = parser.parse_args(argv)
        if args.command == "runs":
            return cmd_runs(args)
        if args.command == "train":
            return cmd_train(args, argv)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command in ("sweep", "sweep-report", "sweeps"):
            return cmd_sweeps(args, argv)
        if args.command == "grade":
            return cmd_grade(args)
        if args.command == "cache":
            return cmd_cache(args)
        return cmd_recipes(args)
    except (UsageError, ConfigError) as e:
        print(f"chainrule: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except (OSError, ValueError, RuntimeError) as e:  # missing data, damaged files ...
        print(f"chainrule: error: {one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
