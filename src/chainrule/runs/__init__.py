"""Run folders at a glance: `chainrule runs` lists them, `chainrule runs compare` puts several side by
side.

    from chainrule.runs import scan, select, format_table
    print(format_table(select(scan(["runs"]), filters=["dataset=mnist"], sort="val_acc")))
"""

from .compare import compare_runs
from .index import RunRecord, RunsError, differing_keys, format_table, read_run, scan, select, table_columns

__all__ = [
    "RunRecord",
    "RunsError",
    "compare_runs",
    "differing_keys",
    "format_table",
    "read_run",
    "scan",
    "select",
    "table_columns",
]
