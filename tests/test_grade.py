"""chainrule grade: the references score full marks; reports, Gradescope JSON, HTML, CLI, rubric
and folder summaries."""

from __future__ import annotations

import csv
import json

import pytest
from grade_helpers import FIXTURES, LIMITS, plant

from chainrule import cli
from chainrule.grade import (
    GradeError,
    RubricError,
    get_interface,
    grade,
    gradescope_json,
    html_report,
    interface_names,
    load_rubric,
    table,
)

INTERFACES = ["uva2018", "uva2022", "cs231n", "chainrule"]


@pytest.mark.parametrize("name", INTERFACES)
def test_reference_scores_full_marks(name):
    report = grade(None, name, limits=LIMITS)
    assert report.max_score > 0 and report.score == report.max_score, table(report, failures_only=True)


@pytest.mark.parametrize("name", INTERFACES)
def test_a_correct_student_file_scores_full_marks(name):
    report = grade(FIXTURES / name, name, limits=LIMITS)
    assert report.score == report.max_score, table(report, failures_only=True)


def test_every_test_name_starts_with_the_students_name():
    for name in interface_names():
        iface = get_interface(name)
        names = [c.name for c in iface.criteria()]
        assert len(names) == len(set(names)), name
        for u in iface.units:
            for c in u.criteria:
                assert c.name.startswith(u.name + ".") or c.name.startswith(u.name + ": "), c.name


def test_outputs(tmp_path):
    folder = plant(tmp_path, "uva2018", "modules.py", "dx = dout * (self.x > 0)", "dx = dout * (self.x >= 0)")
    report = grade(folder, "uva2018", limits=LIMITS)
    data = json.loads(gradescope_json(report))
    assert data["score"] == report.score == report.max_score - 1
    assert {"name", "score", "max_score", "output", "visibility"} <= set(data["tests"][0])
    bad = [t for t in data["tests"] if t["score"] < t["max_score"]]
    assert [t["name"] for t in bad] == ["ReLUModule.backward: derivative at 0"]
    assert "x > 0, not x >= 0" in bad[0]["output"]
    page = html_report(report)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "ReLUModule.backward: derivative at 0" in page and "FAIL" in page
    text = table(report, width=100)
    assert "ReLUModule" in text and "FAIL derivative at 0" in text


def test_cli_reference_writes_results_and_html(tmp_path, capsys):
    out, page = tmp_path / "results.json", tmp_path / "report.html"
    rc = cli.main(
        [
            "grade",
            "--reference",
            "--interface",
            "chainrule",
            "--results",
            str(out),
            "--html",
            str(page),
            "--time-limit",
            "3",
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    assert page.read_text().count("<tr class='ok'>") == len(data["tests"])
    assert "chainrule reference (chainrule)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["grade", "--interface", "uva2018"], "or --reference"),
        (["grade", "nowhere.py", "--interface", "uva2018"], "nowhere.py: no such file or folder"),
        (["grade", "--reference", "--interface", "uva2099"], "--interface 'uva2099': choose one of"),
        (
            ["grade", "--reference", "--interface", "uva2018", "--rubric", "missing.toml"],
            "missing.toml: cannot read",
        ),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert cli.main(argv) in (1, 2)
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_folder_without_the_interfaces_files_is_refused(tmp_path):
    with pytest.raises(GradeError, match="none of modules.py"):
        grade(tmp_path, "chainrule")


# ---- rubric ---------------------------------------------------------------------------------------


def test_rubric_points_visibility_and_the_set_of_tests(tmp_path):
    rub = tmp_path / "rubric.toml"
    rub.write_text(
        'visibility = "after_published"\n'
        '[tests."ReLU.backward: derivative at 0"]\npoints = 5\nvisibility = "hidden"\n'
        '[tests."Softmax.forward: stable for logits of magnitude 1e3"]\nenabled = false\n'
        '[tests."ReLU.forward: float32 stays float32"]\nenabled = true\npoints = 2\n'
    )
    rubric = load_rubric(rub, "chainrule")
    report = grade(None, "chainrule", rubric=rubric, limits=LIMITS)
    by_name = {t.name: t for t in report.tests}
    assert by_name["ReLU.backward: derivative at 0"].max_score == 5
    assert by_name["ReLU.backward: derivative at 0"].visibility == "hidden"
    assert "Softmax.forward: stable for logits of magnitude 1e3" not in by_name
    assert by_name["ReLU.forward: float32 stays float32"].score == 2  # the optional test, added and passed
    assert by_name["Linear.forward: matches the reference"].visibility == "after_published"
    assert report.score == report.max_score


@pytest.mark.parametrize(
    "text, message",
    [
        ('visiblity = "hidden"\n', "rubric.toml: unknown key 'visiblity' (did you mean 'visibility'?)"),
        (
            '[tests."ReLU.backward: derivative at zero"]\npoints = 1\n',
            "did you mean 'ReLU.backward: derivative at 0'",
        ),
        (
            '[tests."ReLU.backward: derivative at 0"]\npoints = "five"\n',
            'derivative at 0"] points: expected a number',
        ),
        ('[tests."ReLU.backward: derivative at 0"]\npts = 1\n', "unknown key 'pts' (did you mean 'points'?)"),
        (
            '[tests."ReLU.backward: derivative at 0"]\nvisibility = "secret"\n',
            "visibility: expected one of visible",
        ),
        ('interface = "cs231n"\n', "the rubric is for 'cs231n', grading 'chainrule'"),
        ("time_limit = 0\n", "time_limit: expected a number > 0"),
        ("points = [\n", "rubric.toml: not valid TOML"),
    ],
)
def test_rubric_errors_name_the_file_and_key(tmp_path, text, message):
    rub = tmp_path / "rubric.toml"
    rub.write_text(text)
    with pytest.raises(RubricError) as e:
        load_rubric(rub, "chainrule")
    assert message in str(e.value) and "\n" not in str(e.value)


# ---- a folder of submissions --------------------------------------------------------------------


def test_folder_of_submissions_to_a_summary_csv(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    plant(subs, "uva2018", "modules.py", "dx = dout * (self.x > 0)", "dx = dout * (self.x >= 0)", name="bob")
    plant(subs, "uva2018", "modules.py", "import numpy", "import numpy", name="alice")
    (subs / "notes.txt").write_text("not a submission")
    out = tmp_path / "summary.csv"
    rc = cli.main(
        [
            "grade",
            str(subs),
            "--interface",
            "uva2018",
            "--summary",
            str(out),
            "--results",
            str(tmp_path / "json"),
            "--time-limit",
            "3",
            "--memory-mb",
            "600",
        ]
    )
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["submission"].rsplit("/", 1)[-1] for r in rows] == ["alice", "bob"]
    alice, bob = rows
    assert alice["score"] == alice["max_score"] and float(bob["score"]) == float(bob["max_score"]) - 1
    assert (
        bob["ReLUModule.backward: derivative at 0"] == "0"
        and alice["ReLUModule.backward: derivative at 0"] == "1"
    )
    assert json.loads((tmp_path / "json" / "bob.json").read_text())["score"] == float(bob["score"])
    assert "alice" in capsys.readouterr().out
