"""Split memory-bound elementwise work on large arrays across a few threads.

NumPy runs a ufunc on one core; it releases the GIL inside the loop, so the two halves of a large
array can be processed by two Python threads at once. Used by the optimizers' in-place updates,
which at 784-1000-300-10 otherwise cost as much as a sixth of a two-thread training step.

The thread count is `CHAINRULE_NUM_THREADS` if set, else min(2, CPUs available), and can be changed
with `set_num_threads` (the benchmarks set it to the BLAS thread count they compare at).
Arrays below `MIN_PARALLEL_SIZE` elements are done in the calling thread (waking a thread costs more).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

MIN_PARALLEL_SIZE = 1 << 17  # elements; 512 kB of float32 per array

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_num_threads: int | None = None


def _default_threads() -> int:
    env = os.environ.get("CHAINRULE_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"CHAINRULE_NUM_THREADS must be a positive integer, got {env!r}") from None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(2, cpus)


def num_threads() -> int:
    """Threads used for large elementwise updates (1 = no threading)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use `n` threads (>= 1) for large elementwise updates."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    _num_threads = n


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chainrule")
            _pool_workers = workers
        return _pool


def split_apply(fn: Callable[[int, int], None], size: int) -> None:
    """Call `fn(start, stop)` over contiguous parts covering [0, size): in parallel when `size` is
    large and more than one thread is allowed, else once as `fn(0, size)`. `fn` must touch only
    elements start..stop-1 of the arrays it updates, so the parts never overlap."""
    k = num_threads()
    if k < 2 or size < MIN_PARALLEL_SIZE:
        fn(0, size)
        return
    k = min(k, size // (MIN_PARALLEL_SIZE // 2))
    cuts = [size * i // k for i in range(k + 1)]
    futures = [_executor(k - 1).submit(fn, cuts[i], cuts[i + 1]) for i in range(1, k)]
    try:
        fn(cuts[0], cuts[1])
    finally:
        for f in futures:
            f.result()  # re-raises a worker's exception
