"""Running a submission's checks in child processes with a wall-time limit and resource limits.

The student's code never runs in the grader's process. One child runs the units in order; it
reports each test as it finishes (see `_child`). When a child dies or hangs, the test it was in
fails with the reason ("timed out after 10 s", "exited with status 3 at import of modules.py",
"killed: over the memory limit"), that unit's later tests are not run, and a fresh child goes on
with the next unit: a broken class costs its own tests and nothing else. A file that kills its
child at import fails every unit defined in it, without a retry per unit.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import chainrule

from .spec import Interface, Unit

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Limits:
    """Per-unit limits of the child processes.

    Args:
        time_limit: wall seconds for one unit (its import included); also its CPU seconds.
        memory_mb: the child's address-space limit (RLIMIT_AS), MiB; numpy alone needs ~150, torch ~700.
    """

    time_limit: float = 10.0
    memory_mb: int = 2048


@dataclass
class Outcome:
    """The result of one test as the child reported it (or as the parent concluded)."""

    ok: bool
    message: str = ""
    seconds: float = 0.0


@dataclass
class RunLog:
    """What happened to the child processes, for the report."""

    events: list[str] = field(default_factory=list)
    output_tail: str = ""


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _death_reason(returncode: int | None, timed_out: bool, limits: Limits) -> str:
    if timed_out:
        return f"timed out after {limits.time_limit:g} s"
    if returncode is None:
        return "stopped responding"
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return f"used more than {limits.time_limit:g} s of CPU"
        if sig == signal.SIGKILL:
            return "killed (over the memory limit?)"
        if sig == signal.SIGSEGV:
            return "crashed (segmentation fault)"
        return f"killed by {_signal_name(sig)}"
    return f"exited with status {returncode}"


STARTUP_SECONDS = 60.0


class _Clock:
    """Seconds a child has had since `restart()`: wall time minus the time it spent waiting for a
    CPU (Linux's /proc/PID/schedstat). A hang counts (sleeping or spinning), a machine busy with
    other work does not, so a time limit means the same on a loaded machine. Without schedstat
    it is plain wall time."""

    def __init__(self, pid: int) -> None:
        self._path = f"/proc/{pid}/schedstat"
        self._last = 0.0
        self.restart()

    def _waited(self) -> float:
        try:
            with open(self._path) as f:
                self._last = int(f.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            pass  # gone (or not Linux): keep the last reading
        return self._last

    def restart(self) -> None:
        self._t0 = time.monotonic()
        self._w0 = self._waited()

    def elapsed(self) -> float:
        wall = time.monotonic() - self._t0
        return wall - max(0.0, self._waited() - self._w0)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(chainrule.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the submission's folder
    env["PYTHONHASHSEED"] = "0"
    for var in THREAD_VARS:
        env[var] = "1"
    return env


def run_checks(
    interface: Interface,
    files: dict[str, Path],
    units: list[Unit],
    tests: set[str],
    limits: Limits,
    seed: int = 0,
) -> tuple[dict[str, Outcome], RunLog]:
    """Run the `tests` of `units` on the student's `files` (name -> path); returns name -> Outcome."""
    results: dict[str, Outcome] = {}
    log = RunLog()
    pending = [u for u in units if any(c.name in tests for c in u.criteria)]
    with tempfile.TemporaryDirectory(prefix="chainrule-grade-") as work:
        while pending:
            done_units, died = _one_child(interface, files, pending, tests, limits, seed, work, results, log)
            pending = [u for u in pending if u.name not in done_units]
            if died is None:
                break
            reason, unit, phase_file = died
            if phase_file is not None:  # died at import: every unit of that file fails the same way
                why = f"{reason} at import of {phase_file}"
                hit = [u for u in pending if u.file == phase_file]
            else:
                why, hit = reason, [u for u in pending if u.name == unit]
            log.events.append(f"{phase_file}: {why}" if phase_file is not None else f"{unit}: {why}")
            for u in hit:
                _fail_rest(u, tests, results, why)
            pending = [u for u in pending if u not in hit]
    return results, log


def _fail_rest(unit: Unit, tests: set[str], results: dict[str, Outcome], why: str) -> None:
    first = True
    for c in unit.criteria:
        if c.name in tests and c.name not in results:
            results[c.name] = Outcome(False, why if first else f"not run: {why} in an earlier test")
            first = False


def _one_child(
    interface: Interface,
    files: dict[str, Path],
    units: list[Unit],
    tests: set[str],
    limits: Limits,
    seed: int,
    work: str,
    results: dict[str, Outcome],
    log: RunLog,
) -> tuple[set[str], tuple[str, str, str | None] | None]:
    """One child for `units`. Returns (units finished, None) or (units finished, (reason, unit it
    died in, the file it was importing or None))."""
    job = {
        "interface": interface.name,
        "files": {k: str(Path(v).resolve()) for k, v in files.items()},
        "units": [u.name for u in units],
        "tests": sorted(tests),
        "seed": seed,
        "time_limit": limits.time_limit,
        "memory_bytes": limits.memory_mb << 20,
        "cpu_seconds_total": int(limits.time_limit * (len(units) + 1)) + 5,
    }
    out_path = Path(work) / "output.txt"
    proc, read_fd = _start_child(job, work, out_path)
    events = _ChildEvents(limits.time_limit, results)
    timed_out = False
    clock = _Clock(proc.pid)
    sel = selectors.DefaultSelector()
    sel.register(read_fd, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            if clock.elapsed() > events.budget:
                timed_out = events.unit is not None
                break
            if not sel.select(timeout=0.2):
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break  # the child closed the pipe: it ended
            *lines, buf = (buf + chunk).split(b"\n")
            for line in lines:
                if events.read(line):
                    clock.restart()  # a unit started: its own time limit
    finally:
        sel.close()
        os.close(read_fd)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.output_tail = _tail(out_path)
    finished, unit = events.finished, events.unit
    if unit is None and all(u.name in finished for u in units):
        return finished, None
    if unit is None:  # died before its first unit started (cannot start Python, chainrule missing)
        reason = (
            _death_reason(proc.returncode, timed_out, limits) + ": " + (log.output_tail[-300:] or "no output")
        )
        return finished, (reason, units[len(finished)].name, None)
    return finished, (_death_reason(proc.returncode, timed_out, limits), unit, events.importing)


def _start_child(job: dict[str, object], work: str, out_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The child process running `job` in `work` (its output appended to `out_path`), and the read
    end of the pipe it reports its events on."""
    read_fd, write_fd = os.pipe()
    with open(out_path, "ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chainrule.grade._child"],
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=sink,
            pass_fds=(write_fd,),
            cwd=work,
            env=_child_env(),
            start_new_session=True,  # a kill reaches whatever the student's code started
        )
    os.close(write_fd)
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(dict(job, fd=write_fd)).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return proc, read_fd


class _ChildEvents:
    """What the child has said so far: the units finished, the one running (and the file it is
    importing), the tests' outcomes (into `results`), and the seconds the child has now."""

    def __init__(self, time_limit: float, results: dict[str, Outcome]) -> None:
        self.time_limit, self.results = time_limit, results
        self.finished: set[str] = set()
        self.unit: str | None = None
        self.importing: str | None = None
        self.test_started = time.monotonic()
        self.budget = STARTUP_SECONDS  # python, numpy and chainrule start-up: trusted code, generous

    def read(self, line: bytes) -> bool:
        """Take one line of the pipe; True when a unit started (its clock starts again)."""
        try:
            ev = json.loads(line)
        except ValueError:
            return False  # not ours: the student wrote to the pipe
        if "unit" in ev:
            if self.unit is not None:
                self.finished.add(self.unit)
            self.unit, self.budget = ev["unit"], self.time_limit
            return True
        if "import" in ev:
            self.importing = ev["import"]
        elif "imported" in ev:
            self.importing = None
        elif "test" in ev:
            self.test_started = time.monotonic()
        elif "result" in ev:
            self.results[ev["result"]] = Outcome(
                bool(ev["ok"]), str(ev.get("message", "")), time.monotonic() - self.test_started
            )
        elif ev.get("done"):
            if self.unit is not None:
                self.finished.add(self.unit)
            self.unit, self.budget = None, STARTUP_SECONDS  # exiting
        return False


def _tail(path: Path, n: int = 2000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", "replace")
