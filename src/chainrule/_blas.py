"""Level-1 BLAS updates (axpby, axpy) from the OpenBLAS that NumPy ships, through ctypes.

NumPy has no fused "y <- a x + b y": `v *= mu; v += g; p -= lr * v` costs four passes over memory
and a scratch array. OpenBLAS does `v <- g + mu v` and `p <- p - lr v` in one pass each, on its own
threads, which halves the optimizer's share of a step on large layers. Only float32/float64,
contiguous, same-dtype arrays take this path; when NumPy's OpenBLAS (or the symbol) cannot be
found, or `CHAINRULE_NO_BLAS=1`, `available()` is False and callers use plain NumPy.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_FUNCS: dict[str, tuple[object, object]] | None = None


def _load() -> dict[str, tuple[object, object]]:
    if os.environ.get("CHAINRULE_NO_BLAS", "").strip() not in ("", "0"):
        return {}
    base = os.path.dirname(np.__file__)
    candidates = sorted(glob.glob(os.path.join(base, "..", "numpy.libs", "*openblas*.so*")))
    candidates += sorted(glob.glob(os.path.join(base, ".dylibs", "*openblas*.dylib")))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        found: dict[str, tuple[object, object]] = {}
        for prefix, int_t, suffix in (
            ("scipy_cblas_", ctypes.c_int64, "64_"),
            ("cblas_", ctypes.c_int64, "64_"),
            ("scipy_cblas_", ctypes.c_int, ""),
            ("cblas_", ctypes.c_int, ""),
        ):
            try:
                fns = {
                    kind: (
                        getattr(lib, f"{prefix}{t}axpby{suffix}"),
                        getattr(lib, f"{prefix}{t}axpy{suffix}"),
                    )
                    for t, kind in (("s", "float32"), ("d", "float64"))
                }
            except AttributeError:
                continue
            for kind, (axpby, axpy) in fns.items():
                real = ctypes.c_float if kind == "float32" else ctypes.c_double
                ptr = ctypes.c_void_p
                axpby.restype = axpy.restype = None
                axpby.argtypes = [int_t, real, ptr, int_t, real, ptr, int_t]
                axpy.argtypes = [int_t, real, ptr, int_t, ptr, int_t]
                found[kind] = (axpby, axpy)
            if _works(found):
                return found
            found = {}
    return {}


def _works(found: dict[str, tuple[object, object]]) -> bool:
    # one tiny known update per dtype: a wrong integer width or symbol would show here, not later
    for kind in ("float32", "float64"):
        x = np.array([1.0, 2.0, 3.0], kind)
        y = np.array([4.0, 5.0, 6.0], kind)
        axpby, axpy = found[kind]
        axpby(3, 2.0, x.ctypes.data, 1, 0.5, y.ctypes.data, 1)  # y = 2x + y/2
        axpy(3, -1.0, x.ctypes.data, 1, y.ctypes.data, 1)  # y -= x
        if not np.array_equal(y, np.array([3.0, 4.5, 6.0], kind)):
            return False
    return True


def _funcs(dtype: np.dtype) -> tuple[object, object] | None:
    global _FUNCS
    if _FUNCS is None:
        try:
            _FUNCS = _load()
        except Exception:  # any surprise in a foreign library: fall back to NumPy
            _FUNCS = {}
    return _FUNCS.get(np.dtype(dtype).name)


def available(*arrays: np.ndarray) -> bool:
    """True if the BLAS path can update these arrays (same float dtype, C-contiguous, found)."""
    dt = arrays[0].dtype
    return (
        all(a.dtype == dt and a.flags.c_contiguous for a in arrays)
        and dt.name in ("float32", "float64")
        and _funcs(dt) is not None
    )


def axpby(alpha: float, x: np.ndarray, beta: float, y: np.ndarray) -> None:
    """y <- alpha x + beta y, in place (check `available(x, y)` first)."""
    fn = _funcs(y.dtype)[0]  # type: ignore[index]
    fn(y.size, alpha, x.ctypes.data, 1, beta, y.ctypes.data, 1)  # type: ignore[operator]


def axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    """y <- y + alpha x, in place (check `available(x, y)` first)."""
    fn = _funcs(y.dtype)[1]  # type: ignore[index]
    fn(y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)  # type: ignore[operator]
