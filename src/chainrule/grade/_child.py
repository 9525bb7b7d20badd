"""The child process that imports a student's files and runs their checks (`python -m
chainrule.grade._child`; never imported by the grader itself).

It reads a job (JSON) on stdin, sets its resource limits before anything of the student's runs,
and reports on the file descriptor the job names, one JSON object per line:
`{"unit": name}` when a unit starts, `{"import": file}` / `{"imported": file}` around the import of a
student file, `{"test": name}` before a test, `{"result": name, "ok": bool, "message": str}`
after it. The parent turns a silence (a hang, a crash, an `os._exit`) into the reason the
remaining tests failed.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
import zlib


def _limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (cap, cap))


def _cpu_soft_limit(seconds: float) -> None:
    """Allow `seconds` more CPU from now (the hard limit, set once, bounds the whole job)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    now = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(now + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class Reporter:
    def __init__(self, fd: int) -> None:
        self._f = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def send(self, **event: object) -> None:
        self._f.write(json.dumps(event) + "\n")
        self._f.flush()


def describe_exception(e: BaseException, student_files: list[str]) -> str:
    """'ValueError: shapes (4,3) and (2,3) not aligned (modules.py line 42, in backward)'."""
    if isinstance(e, SystemExit):
        text = f"called sys.exit({e.code!r})"
    elif isinstance(e, MemoryError):
        text = f"ran out of memory (MemoryError: {e})" if str(e) else "ran out of memory (MemoryError)"
    else:
        first = (str(e).strip().splitlines() or [""])[0]
        text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    frames = [
        f for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) in student_files
    ]
    if frames:
        f = frames[-1]
        text += f" ({os.path.basename(f.filename)} line {f.lineno}, in {f.name})"
    return text


def main() -> int:
    job = json.loads(sys.stdin.read())
    _limit(resource.RLIMIT_AS, int(job["memory_bytes"]))
    _limit(resource.RLIMIT_CPU, int(job["cpu_seconds_total"]))
    _limit(resource.RLIMIT_FSIZE, 64 << 20)  # a student's file writes stay small
    _limit(resource.RLIMIT_CORE, 0)
    out = Reporter(int(job["fd"]))
    sys.setrecursionlimit(10_000)

    import importlib.util

    import numpy as np

    from chainrule.grade.spec import Ctx, Fail, get_interface

    interface = get_interface(job["interface"])
    files: dict[str, str] = job["files"]
    student_files = [os.path.abspath(p) for p in files.values()]
    for folder in dict.fromkeys(os.path.dirname(p) for p in student_files):
        sys.path.insert(0, folder)  # a student's file may import its siblings
    modules: dict[str, object] = {}

    def load(file: str) -> object:
        if file not in modules:
            out.send(**{"import": file})
            spec = importlib.util.spec_from_file_location(f"student_{file.removesuffix('.py')}", files[file])
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            modules[file] = module
            out.send(imported=file)
        return modules[file]

    for unit_name in job["units"]:
        unit = interface.unit(unit_name)
        out.send(unit=unit_name)
        _cpu_soft_limit(float(job["time_limit"]) + 1)
        todo = [c for c in unit.criteria if c.name in set(job["tests"])]
        try:
            module = load(unit.file)
            target = getattr(module, unit.name, None)
            if target is None:
                raise Fail(f"{unit.name} is not defined in {unit.file}")
        except BaseException as e:  # noqa: BLE001 - the student's import may raise anything
            message = (
                str(e)
                if isinstance(e, Fail)
                else f"import of {unit.file} failed: " + describe_exception(e, student_files)
            )
            for c in todo:
                out.send(result=c.name, ok=False, message=message)
            continue
        for c in todo:
            out.send(test=c.name)
            seed = [int(job["seed"]), zlib.crc32(c.name.encode())]
            ctx = Ctx(target=target, modules=modules, rng=np.random.default_rng(seed))
            np.random.seed(seed[1] % (2**32))  # noqa: NPY002 - students draw from the global generator
            try:
                with np.errstate(all="ignore"):
                    message = c.check(ctx)
                ok = not message
            except Fail as e:
                ok, message = False, str(e)
            except BaseException as e:  # noqa: BLE001
                ok, message = False, describe_exception(e, student_files)
            out.send(result=c.name, ok=ok, message=message or "")
    out.send(done=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
