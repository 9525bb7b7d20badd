"""`chainrule grade`: an autograder for the assignment's backprop modules.

A student's file is checked against chainrule's verified reference through an interface (the
course's names and calling conventions: `uva2018`, `uva2022`, `cs231n`, `chainrule`), in child
processes with time and memory limits, and written up as a table, Gradescope's `results.json`
or an HTML page::

    from chainrule.grade import grade, table
    report = grade("submissions/alice/modules.py", "uva2018")
    print(table(report))
"""

from .api import GradeError, Report, TestResult, find_submissions, grade, submission_files
from .output import gradescope_json, html_report, summary_csv, table, write_html, write_results, write_summary
from .rubric import Rubric, RubricError, load_rubric, parse_rubric
from .sandbox import Limits
from .spec import get_interface, interface_names

__all__ = [
    "GradeError",
    "find_submissions",
    "Limits",
    "Report",
    "Rubric",
    "RubricError",
    "TestResult",
    "get_interface",
    "grade",
    "gradescope_json",
    "html_report",
    "interface_names",
    "load_rubric",
    "parse_rubric",
    "submission_files",
    "summary_csv",
    "table",
    "write_html",
    "write_results",
    "write_summary",
]
