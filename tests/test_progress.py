"""The training progress display: rich bar on a terminal, one plain line per evaluation elsewhere."""

from __future__ import annotations

import io
import re

from chainrule.train.progress import Progress, fmt_time


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_not_a_terminal_prints_one_plain_line_per_evaluation_and_messages():
    out = io.StringIO()
    p = Progress(100, stream=out)
    p.message("chainrule: starting")
    p.start(0)
    for step in range(1, 101):
        p.update(step)
        if step % 50 == 0:
            p.evaluated(step, f"ep {step / 50:.2f} val 90.00%")
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "chainrule: starting"
    assert len(lines) == 3 and "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert lines[1].startswith("[############............]  50.0% step 50/100 ") and lines[1].endswith(
        "ep 1.00 val 90.00%"
    )
    assert "100.0% step 100/100" in lines[2] and "ETA 0:00" in lines[2]


def test_quiet_prints_nothing():
    out = FakeTerminal()
    p = Progress(10, enabled=False, stream=out)
    p.message("x")
    p.start(0)
    p.update(5)
    p.evaluated(10, "val 1%")
    p.close()
    assert out.getvalue() == ""


def test_terminal_draws_a_rich_bar_with_metrics_below_and_messages_above():
    out = FakeTerminal()
    p = Progress(200, stream=out)
    p.start(0)
    for step in range(1, 201):
        p.update(step)
        if step == 100:
            p.evaluated(step, "ep 1.00 loss 0.1234 val 95.00%")
            p.message("a message")
    p.close()
    text = plain(out.getvalue())
    last = text.split("\r")[-1]
    assert re.search(r"train .*100% 200/200 steps .* ETA ", last), last
    assert "  ep 1.00 loss 0.1234 val 95.00%" in last
    assert "a message\n" in text
    assert p.total == 200


def test_fmt_time():
    assert fmt_time(0) == "0:00" and fmt_time(61) == "1:01" and fmt_time(3725) == "1:02:05"
