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


def screen(text: str) -> list[str]:
    """What a terminal shows (scrollback included) after `text`: carriage returns, newlines, cursor up
    (ESC[nA) and erase line (ESC[2K) applied; colours and cursor visibility ignored. A line a live
    display redraws over is gone, as on a real terminal."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", text):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token.startswith("\x1b["):
            if token.endswith("A"):
                row = max(0, row - int(token[2:-1] or 1))
            elif token == "\x1b[2K":
                lines[row] = ""
        else:
            cur = lines[row].ljust(col)
            lines[row] = cur[:col] + token + cur[col + len(token) :]
            col += len(token)
    return [line.rstrip() for line in lines if line.strip()]


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
    assert re.search(r"step 50/100 [\d,.]+ steps/(s|min) elapsed ", lines[1]), lines[1]
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


def test_terminal_draws_a_rich_bar_with_metrics_and_messages_above():
    out = FakeTerminal()
    p = Progress(200, stream=out)
    p.start(0)
    for step in range(1, 201):
        p.update(step)
        if step == 100:
            p.evaluated(step, "ep 1.00 loss 0.1234 val 95.00%")
            p.message("a message")
    p.close()
    shown = screen(out.getvalue())
    assert len(shown) == 3, shown
    assert shown[0].endswith("ep 1.00 loss 0.1234 val 95.00%") and shown[1] == "a message"
    assert re.search(r"train .*100% 200/200 steps .* ETA ", shown[2]), shown[2]
    assert "a message\n" in plain(out.getvalue())
    assert p.total == 200


def test_terminal_keeps_one_line_per_evaluation_in_the_scrollback_under_the_live_bar():
    out = FakeTerminal()
    p = Progress(300, stream=out)
    p.message("chainrule: starting")
    p.start(0)
    for step in range(1, 301):
        p.update(step)
        if step % 100 == 0:
            p.evaluated(step, f"ep {step / 100:.2f} val 9{step // 100}.00%")
    p.close()
    shown = screen(out.getvalue())
    # the header, then epochs 1, 2 and 3 (each in the scrollback, Keras-style), then the final bar
    assert shown[0] == "chainrule: starting" and len(shown) == 5, shown
    for i, line in enumerate(shown[1:4], start=1):
        assert f"step {100 * i}/300 " in line and line.endswith(f"ep {i}.00 val 9{i}.00%"), line
        assert re.search(r" [\d,.]+ steps/(s|min) elapsed ", line), line
    assert re.search(r"train .*100% 300/300 steps [\d,.]+ steps/s .*ETA", shown[4]), shown[4]


def test_fmt_time():
    assert fmt_time(0) == "0:00" and fmt_time(61) == "1:01" and fmt_time(3725) == "1:02:05"
