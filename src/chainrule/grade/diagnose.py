"""Comparing a student's array with the reference: pass/fail, the largest errors and where, and
hints from a catalogue of common mistakes recognised by the shape of the error.

Every check in `chainrule.grade` reports through `compare`, so a failure always reads the same:
what differs, the largest absolute and relative error with its index and both values, then a hint
when one of the catalogue's patterns fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.gradcheck import rel_error

# float64 inputs: a correct solution agrees to ~1e-15; float32 arithmetic inside stays below 1e-6
TOLERANCE = 1e-6
# and any difference below this passes (a loss of exactly 0 computed as 1e-17 is right)
ATOL = 1e-10


@dataclass
class Context:
    """What a hint may need to know about the values compared.

    Args:
        what: a short name of the value ("dx", "grads['weight']", "the loss").
        kind: "output", "grad" (a gradient of a mean loss), "weight_grad", "loss" or "probs".
        batch: N of the batch, for the batch-size hints.
        zero_mask: where the layer's input is exactly 0 (the ReLU derivative at 0).
        large_logits: the input holds logits of magnitude ~1e3 (the max-trick hints).
        against: what `expected` is ("the reference", "finite differences of your forward").
        row_max: the maxima of the input's rows (the max-trick hints tell overflow from underflow).
    """

    what: str
    kind: str = "output"
    batch: int | None = None
    zero_mask: np.ndarray | None = None
    large_logits: bool = False
    against: str = "the reference"
    row_max: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def as_array(value: Any, what: str) -> tuple[np.ndarray | None, str | None]:
    """The value as a float64 array, or an error message (None returned, a list, strings...)."""
    if value is None:
        return None, f"{what} is None (did the method return its result?)"
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - a student's object may fail in any way
        return None, f"{what} is a {type(value).__name__} that is not an array ({e})"
    if arr.dtype.kind not in "fiub":
        return None, f"{what} is a {type(value).__name__} of dtype {arr.dtype}, not numbers"
    return arr.astype(np.float64), None


def compare(got: Any, expected: np.ndarray, ctx: Context, tol: float = TOLERANCE) -> str | None:
    """None if `got` equals `expected` within `tol` (relative to the array's scale), else a message.

    The message names the value, the shapes if they differ, the largest absolute and relative
    errors with their index and both values, and every hint of the catalogue that fits.
    """
    expected = np.asarray(expected, np.float64)
    arr, problem = as_array(got, ctx.what)
    if arr is None:
        return problem
    if arr.shape != expected.shape:
        if arr.size == 1 and expected.size == 1:
            arr = arr.reshape(expected.shape)
        else:
            msg = f"{ctx.what} has shape {arr.shape}, expected {expected.shape}"
            hint = _shape_hint(arr, expected, ctx)
            return msg + (f". Hint: {hint}" if hint else "")
    bad = ~np.isfinite(arr) & np.isfinite(expected)
    if bad.any():
        idx = _index(np.argwhere(bad)[0])
        msg = f"{ctx.what} is {arr[idx]} at {idx} where the reference is {expected[idx]:.6g}"
        msg += f" ({int(bad.sum())} of {arr.size} entries not finite)"
        hints = [h for h in (rule(arr, expected, ctx) for rule in NONFINITE_HINTS) if h]
        return msg + "".join(f". Hint: {h}" for h in hints)
    if expected.size == 0 or rel_error(arr, expected) <= tol or np.max(np.abs(arr - expected)) <= ATOL:
        return None
    msg = f"{ctx.what} differs from {ctx.against}: {error_summary(arr, expected)}"
    hints = [h for h in (rule(arr, expected, ctx) for rule in HINTS) if h]
    return msg + "".join(f". Hint: {h}" for h in hints[:2])


def error_summary(got: np.ndarray, expected: np.ndarray) -> str:
    """'largest abs error 0.3 at (2, 0) (got 0.5, expected 0.2); largest rel error ...'."""
    diff = np.abs(got - expected)
    if got.ndim == 0:
        return f"got {float(got):.6g}, expected {float(expected):.6g} (abs error {float(diff):.3g})"
    ia = _index(np.unravel_index(int(np.argmax(diff)), diff.shape))
    rel = diff / np.maximum(np.abs(expected), 1e-12)
    ir = _index(np.unravel_index(int(np.argmax(rel)), rel.shape))
    text = f"largest abs error {diff[ia]:.3g} at {ia} (got {got[ia]:.6g}, expected {expected[ia]:.6g})"
    if ir != ia:
        text += f"; largest rel error {rel[ir]:.3g} at {ir} (got {got[ir]:.6g}, expected {expected[ir]:.6g})"
    else:
        text += f", rel error {rel[ia]:.3g}"
    n_bad = int((diff > TOLERANCE * (np.abs(expected).max() + 1e-12)).sum())
    return text + f"; {n_bad} of {got.size} entries wrong"


def _index(idx: Any) -> tuple[int, ...]:
    return tuple(int(i) for i in idx)


# ---- the hint catalogue --------------------------------------------------------------------------
# Each rule looks at (got, expected, context) and returns a sentence or None.

Rule = Callable[[np.ndarray, np.ndarray, Context], str | None]


def _scale_factor(got: np.ndarray, expected: np.ndarray) -> float | None:
    """c with got = c * expected (to 1e-6), or None if the error is not a constant factor."""
    denom = float(np.sum(expected * expected))
    if denom == 0.0:
        return None
    c = float(np.sum(got * expected)) / denom
    if c == 0.0 or rel_error(got, c * expected) > 1e-6:
        return None
    return c


def batch_factor_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    """The gradient off by a factor of the batch size; the loss summed instead of averaged."""
    n = ctx.batch
    c = _scale_factor(got, expected)
    if c is None or not n or n < 2:
        return None
    if ctx.against != "the reference" and (abs(c - n) < 1e-6 * n or abs(c * n - 1) < 1e-6):
        return (
            f"your backward and your forward disagree by a factor of the batch size N = {n}: one of "
            "them averages over the batch and the other sums"
        )
    if abs(c - n) < 1e-6 * n:
        if ctx.kind == "loss":
            return (
                f"the loss is summed over the batch instead of averaged: divide it by the batch size N = {n}"
            )
        return (
            f"{ctx.what} is N = {n} (the batch size) times too large: the loss is the mean over the "
            f"batch, so its gradient carries a factor 1/N"
        )
    if abs(c * n - 1) < 1e-6:
        if ctx.kind == "loss":
            return f"the loss is divided by the batch size N = {n} once too often (or by N^2)"
        if ctx.kind == "weight_grad":
            return (
                f"{ctx.what} is N = {n} (the batch size) times too small: the 1/N of the mean loss is "
                "already in the upstream gradient; do not average over the batch again here"
            )
        return f"{ctx.what} is N = {n} (the batch size) times too small: the 1/N is applied twice"
    return None


def constant_factor_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    c = _scale_factor(got, expected)
    n = ctx.batch or 0
    if c is None or (n >= 2 and (abs(c - n) < 1e-6 * n or abs(c * n - 1) < 1e-6)):
        return None
    if abs(c + 1) < 1e-6:
        return f"{ctx.what} has the wrong sign everywhere"
    return f"{ctx.what} is the reference times {c:.6g} everywhere (a constant factor is wrong)"


def transposed_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    """A square weight gradient that equals the transpose of the reference."""
    if got.ndim == 2 and got.shape[0] == got.shape[1] and rel_error(got, expected.T) <= TOLERANCE:
        return _TRANSPOSED.format(what=ctx.what)
    return None


_TRANSPOSED = (
    "{what} is the transpose of the right gradient: a parameter's gradient has the parameter's "
    "shape (dL/dW = dout^T x for W of shape (out, in), x^T dout for W of shape (in, out))"
)


def relu_zero_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    """Errors only where the input is exactly 0: the derivative of ReLU at 0."""
    m = ctx.zero_mask
    if m is None or m.shape != got.shape or not m.any():
        return None
    wrong = ~np.isclose(got, expected, rtol=1e-6, atol=1e-12)
    if wrong.any() and not (wrong & ~m).any():
        return (
            "the only wrong entries are where the input is exactly 0: take the ReLU derivative at 0 "
            "as 0, as PyTorch does (use x > 0, not x >= 0)"
        )
    return None


HINTS: tuple[Rule, ...] = (batch_factor_hint, transposed_hint, relu_zero_hint, constant_factor_hint)


def max_trick_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    """Non-finite values on large logits: exp overflowed (no max trick) or a whole row underflowed
    (the max taken over the whole batch instead of per row)."""
    if not ctx.large_logits:
        return None
    if got.ndim == 2 and ctx.row_max is not None:
        row_bad = ~np.isfinite(got).all(axis=1)
        if row_bad.any() and not row_bad[int(np.argmax(ctx.row_max))]:
            return (
                "some rows are fine and others are not: subtract each row's own maximum "
                "(x.max(axis=1, keepdims=True)) before exp, not the maximum over the whole batch"
            )
    return (
        "exp overflows for logits of magnitude 1e3: subtract each row's maximum before exp (the max "
        "trick; softmax(x) = softmax(x - max(x)))"
    )


def zero_prob_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    if not ctx.extra.get("zero_probs"):
        return None
    return (
        "probabilities that are exactly 0 give 0 * log(0) = nan: take the log only of the true "
        "class's probability (e.g. -log(x[range(N), labels])), or of x where y > 0"
    )


NONFINITE_HINTS: tuple[Rule, ...] = (max_trick_hint, zero_prob_hint)


def _shape_hint(got: np.ndarray, expected: np.ndarray, ctx: Context) -> str | None:
    if got.ndim == 2 and got.shape == expected.T.shape:
        return _TRANSPOSED.format(what=ctx.what)
    if got.size == expected.size:
        return f"the values may be right but the shape is not: reshape to {expected.shape}"
    return None


INPLACE_UPSTREAM = (
    "backward changed its upstream gradient in place (e.g. dout[x <= 0] = 0 or dout *= ...): the "
    "caller still needs it; work on a copy (dout.copy()) or build a new array (np.where, dout * mask)"
)
INPLACE_INPUT = (
    "the input was changed in place (e.g. x[x < 0] = 0 or x -= x.max()): the caller still needs "
    "it; compute the result in a new array"
)
