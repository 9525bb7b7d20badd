"""Where trials run: a local pool of worker processes, or Ray tasks.

Both have the same small interface, used only by the coordinator (`chainrule.sweep.runner`):
`capacity` (how many trials may run at once), `submit(task)`, `wait(timeout)` -> the (task,
result) pairs that finished, `close()` and `kill()`. A result is `worker.run_trial`'s dict; a
worker that dies (killed, out of memory) gives a "failed" result for its trial instead of
hanging the sweep.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, Any

from chainrule._io import environ, one_line

from . import worker
from .layout import SweepError


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _worker_main(conn: Connection, threads: int) -> None:
    worker.init_worker(threads)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(worker.run_trial(task))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    task: dict[str, Any] | None = None


class Pool:
    """A sweep backend, as the coordinator (`runner._drive`) uses it: `capacity` trials at once,
    `busy`, `submit(task)`, `wait(timeout)` -> [(task, result)], `close()`, `kill()`. The class
    attributes say how to open and describe it; the defaults are a pool on this machine."""

    name = ""
    on_this_machine = True  # the coordinator checks the data here and sizes the pool by its cores
    takes_address = False  # `--address` (a cluster to join) means something to it

    @classmethod
    def open(cls, workers: Any, threads: int, address: str | None = None) -> Any:
        return cls(workers, threads)  # type: ignore[call-arg]

    @staticmethod
    def where(workers: int, threads: int) -> str:
        """The sweep header's words on where trials run."""
        return f" on {workers} worker(s) x {threads} thread(s)"


class LocalPool(Pool):
    """`workers` processes (spawned: no state is inherited from the coordinator), each running one
    trial at a time with `threads` threads. Workers die with the coordinator (`worker.init_worker`).
    """

    name = "local"

    def __init__(self, workers: int, threads: int) -> None:
        self.capacity = workers
        self.threads = threads
        self.ctx = mp.get_context("spawn")
        self.workers: list[_Worker] = []
        for _ in range(workers):
            self.workers.append(self._start())

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        with environ(worker.thread_env(self.threads)):  # inherited: NumPy's BLAS starts with them
            proc = self.ctx.Process(
                target=_worker_main, args=(child, self.threads), daemon=True, name="chainrule-sweep-worker"
            )
            proc.start()
        child.close()
        return _Worker(proc, parent)

    @property
    def busy(self) -> int:
        return sum(w.task is not None for w in self.workers)

    def submit(self, task: dict[str, Any]) -> None:
        task = dict(task, threads=self.threads)
        for w in self.workers:
            if w.task is None:
                w.task = task
                w.conn.send(task)
                return
        raise RuntimeError("no idle worker")

    def wait(self, timeout: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        busy = [w for w in self.workers if w.task is not None]
        if not busy:
            time.sleep(timeout)
            return []
        ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout))
        done = []
        for i, w in enumerate(self.workers):
            if w.task is None or (w.conn not in ready and w.proc.sentinel not in ready):
                continue
            task, result = w.task, None
            if w.conn.poll():
                try:
                    result = w.conn.recv()
                except (EOFError, OSError):
                    result = None
            if result is None:  # the process died without an answer
                w.proc.join(1)
                result = {
                    "trial_id": task["trial_id"],
                    "status": "failed",
                    "error": f"the worker process died (exit code {w.proc.exitcode}) during this trial",
                    "result": {},
                    "wall_s": 0.0,
                }
                w.conn.close()
                self.workers[i] = self._start()
            else:
                w.task = None
            done.append((task, result))
        return done

    def close(self) -> None:
        for w in self.workers:
            if w.proc.is_alive() and w.task is None:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in self.workers:
            w.proc.join(2 if w.task is None else 0)
        self.kill()

    def kill(self) -> None:
        for w in self.workers:
            if w.proc.is_alive():
                w.proc.kill()
        for w in self.workers:
            w.proc.join(5)
            w.conn.close()


class RayPool(Pool):
    """Each trial is a Ray task (`num_cpus = threads`). With `address` it joins that cluster
    ("auto": the one `ray start` runs here), else it starts a fresh local Ray with `workers * threads`
    CPUs (`address="local"`: never a cluster named by `RAY_ADDRESS` or by the "current cluster" file
    a dead head left in Ray's temp folder). Ray is imported here, never by `import chainrule.sweep`.

    A task whose Ray worker or node died (`kill -9`, a node lost) gives a "lost" result: the
    coordinator runs the trial again (`LOST_RETRIES`); the trial's own failures are "failed"."""

    name = "ray"
    on_this_machine = False
    takes_address = True

    @classmethod
    def open(cls, workers: int | None, threads: int, address: str | None = None) -> RayPool:
        return cls(workers, threads, address)

    @staticmethod
    def where(workers: int, threads: int) -> str:
        return " on Ray"

    def __init__(self, workers: int | None, threads: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            from chainrule.train.config import ConfigError

            raise ConfigError("--backend ray needs Ray: pip install 'chainrule[ray]'") from None
        self.ray = ray
        self.threads = threads
        self.started_here = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "configure_logging": False,
                "log_to_driver": False,
            }
            if address:
                _join_cluster(ray, address, kw)
            else:
                cpus = (workers or max(1, available_cores() // threads)) * threads
                try:
                    ray.init(address="local", num_cpus=cpus, **kw)
                except Exception as e:  # Ray's own startup failed (a timeout on a loaded machine ...)
                    raise SweepError(f"could not start a local Ray: {one_line(e)}") from None
                self.started_here = True
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = workers or max(1, cluster_cpus // threads)
        self._remote = ray.remote(num_cpus=threads, max_retries=0)(_ray_trial)
        self.pending: dict[Any, dict[str, Any]] = {}
        ex = ray.exceptions
        self._lost = (
            ex.WorkerCrashedError,
            ex.NodeDiedError,
            ex.LocalRayletDiedError,
            ex.ObjectLostError,
            ex.RaySystemError,
        )

    @property
    def busy(self) -> int:
        return len(self.pending)

    def submit(self, task: dict[str, Any]) -> None:
        task = dict(task, threads=self.threads)
        self.pending[self._remote.remote(task)] = task

    def wait(self, timeout: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        if not self.pending:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
        done = []
        for ref in ready:
            task = self.pending.pop(ref)
            try:
                result = self.ray.get(ref)
            except Exception as e:  # the task's process or node died, or Ray failed it
                lost = isinstance(e, self._lost)
                what = "its Ray worker or node died" if lost else "Ray task failed"
                result = {
                    "trial_id": task["trial_id"],
                    "status": "lost" if lost else "failed",
                    "error": f"{what}: {type(e).__name__}: {' '.join(str(e).split())[:300]}",
                    "result": {},
                    "wall_s": 0.0,
                }
            done.append((task, result))
        return done

    def close(self) -> None:
        self.kill()

    def kill(self) -> None:
        for ref in list(self.pending):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:
                pass
        self.pending.clear()
        if self.started_here:
            self.ray.shutdown()


# sweep backend name -> its pool class (`--backend`; see `Pool`). A new backend is its class plus
# one entry here.
POOLS: dict[str, type[Pool]] = {"local": LocalPool, "ray": RayPool}

LOST_RETRIES = 2  # a trial whose Ray worker or node died runs again this often, then it is failed

# what the installed Ray (2.60) says about token authentication (its token loader's own message)
_TOKEN_DOCS = "https://docs.ray.io/en/latest/ray-security/token-auth.html"


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[IO[bytes]]:
    """File descriptor 2 into a temporary file: Ray's C++ client logs each failed connection
    attempt there (once a second, for about 15 s, when the cluster refuses its token)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield f
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _token_source() -> str:
    """Where Ray looks for this process's token (in its token loader's order)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "the RAY_AUTH_TOKEN environment variable"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"] + " (RAY_AUTH_TOKEN_PATH)"
    return str(Path.home() / ".ray" / "auth_token")


def auth_hint(address: str) -> str:
    """One line for a cluster that refused this client's token (or its lack of one)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return (
            f"the Ray cluster at {address} refused this process's token (InvalidAuthToken): the token in "
            f"{_token_source()} is not the cluster's; copy the head's (`ray get-auth-token` prints it there) "
            f"into that file, see {_TOKEN_DOCS}"
        )
    return (
        f"the Ray cluster at {address} uses token authentication and this process sent no token "
        f"(InvalidAuthToken; an explicit --address sends one only with RAY_AUTH_MODE=token): run with "
        f"RAY_AUTH_MODE=token and the head's token in {_token_source()} (`ray get-auth-token` prints it "
        f"on the head), or start the cluster with RAY_AUTH_MODE=disabled on a trusted network; "
        f"see {_TOKEN_DOCS}"
    )


def _join_cluster(ray: Any, address: str, kw: dict[str, Any]) -> None:
    """`ray.init(address)`, with a refused token (or a failed connection) as one line instead of
    Ray's retry log and traceback."""
    with _stderr_to_file() as log:
        try:
            ray.init(address=address, **kw)
            error = None
        except Exception as e:  # ConnectionError, Ray's AuthenticationError, a bad address ...
            error = e
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    if error is None:
        sys.stderr.write(text)  # what Ray said while it connected (warnings)
        return
    if ray.is_initialized():
        ray.shutdown()
    if isinstance(error, ray.exceptions.AuthenticationError):  # token mode, and no token here
        raise SweepError(
            f"RAY_AUTH_MODE=token but this process has no Ray token: put the head's (`ray get-auth-token` "
            f"prints it there) in {_token_source()}; see {_TOKEN_DOCS}"
        ) from None
    if "InvalidAuthToken" in text:
        raise SweepError(auth_hint(address)) from None
    raise SweepError(
        f"cannot join the Ray cluster at {address}: {one_line(error)} (is it running? `ray status` there)"
    ) from None


def _ray_trial(task: dict[str, Any]) -> dict[str, Any]:
    return worker.run_trial(task)
