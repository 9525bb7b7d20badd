"""chainrule.layout is the one place that names the files of run, sweep and comparison folders: no
other module of src/ writes one of those names as a literal (a path, an f-string, a message)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chainrule import layout

SRC = Path(layout.__file__).parent
# names that are also ordinary words: only a path made with them counts (`x / "trials"`, "trials/")
FOLDER_NAMES = {layout.TRIALS_DIR}
FILE_NAMES = [n for n in layout.NAMES if n not in FOLDER_NAMES]
FILE_RE = re.compile("|".join(rf"(?<![\w.]){re.escape(n)}(?!\w)" for n in FILE_NAMES))
FOLDER_RE = re.compile("|".join(rf"(?<![\w.]){re.escape(n)}/" for n in FOLDER_NAMES))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (prose that describes a folder may name its files)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def stray_literals(source: str, filename: str = "<src>") -> list[str]:
    """`file:line: text` of each string literal in `source` that names a layout file."""
    tree = ast.parse(source, filename)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        hits: list[ast.Constant] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if FILE_RE.search(node.value) or FOLDER_RE.search(node.value):
                hits.append(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # path / "trials"
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in FOLDER_NAMES:
                    hits.append(side)
        if isinstance(node, ast.Compare):  # p.name == "trials"
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Constant) and side.value in FOLDER_NAMES:
                    hits.append(side)
        found += [f"{filename}:{h.lineno}: {h.value!r}" for h in hits]
    return found


def test_no_stray_file_names_in_src() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == Path(layout.__file__):
            continue
        found += stray_literals(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    assert not found, "use chainrule.layout's names instead of:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "code",
    [
        'p = run_dir / "summary.json"',
        "p = run_dir / 'model.npz'",
        "msg = f\"{run_dir / 'config.toml'} is missing\"",
        'msg = f"{run_dir} has no config.toml"',
        'p = out / "trials" / tid',
        'ok = p.name == "trials"',
        'href = f"trials/{tid}/"',
        'FILES = ("loss.png", "accuracy.png")',
        'x = ".lock"',
    ],
)
def test_the_check_finds_a_literal(code: str) -> None:
    assert stray_literals(code)


@pytest.mark.parametrize(
    "code",
    [
        'def f():\n    """Writes summary.json and model.npz."""\n',
        'headers = ["trials", "seed"]',
        'msg = f"{n} trials"',
        "p = run_dir / layout.SUMMARY",
        'name = "my_summary.json.bak"',
        'x = "sweep.dbx"',
    ],
)
def test_the_check_leaves_other_strings(code: str) -> None:
    assert not stray_literals(code)


def test_names_are_distinct() -> None:
    assert len(set(layout.NAMES)) == len(layout.NAMES)
    assert layout.trial_dir("s", "t1") == Path("s") / layout.TRIALS_DIR / "t1"


def test_folder_predicates(tmp_path: Path) -> None:
    sweep = tmp_path / "sw"
    trial = layout.trial_dir(sweep, "abc")
    trial.mkdir(parents=True)
    assert not layout.is_run_folder(trial) and layout.sweep_of_trial(trial) is None
    (trial / layout.CONFIG).write_text("")
    (sweep / layout.SWEEP_DB).write_text("")
    assert layout.is_run_folder(trial) and layout.is_sweep_folder(sweep)
    assert layout.sweep_of_trial(trial) == sweep
    assert layout.sweep_of_trial(sweep) is None
