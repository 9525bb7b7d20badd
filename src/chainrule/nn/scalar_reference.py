"""A pure-Python (no NumPy) scalar reference: the 2-3-2 network of seed 002, Question 3.

    k_j = sum_i x_i W_ij + b1_j        (hidden pre-activations, W is (inputs, hidden) as in the seed)
    h_j = sigmoid(k_j)
    o_m = sum_j h_j V_jm + b2_m        (V is (hidden, outputs))
    y_m = exp(o_m) / sum_l exp(o_l)
    l   = -log y_c

Every local derivative is computed with explicit loops from the chain rule, one step at a time:
    dl/dy_m  = -1/y_c if m == c else 0
    dl/do_m  = sum_i dl/dy_i * dy_i/do_m,   dy_i/do_m = y_i (delta_im - y_m)     (= y_m - delta_cm)
    dl/dV_jm = dl/do_m * h_j,   dl/db2_m = dl/do_m,   dl/dh_j = sum_m dl/do_m V_jm
    dl/dk_j  = dl/dh_j * h_j (1 - h_j)
    dl/dW_ij = dl/dk_j * x_i,   dl/db1_j = dl/dk_j

Note the engine's `Linear` stores weights as (out, in), i.e. W^T and V^T of the seed's layout.
"""

from __future__ import annotations

import math

Vector = list[float]
Matrix = list[list[float]]

# seed 002's worked example
SEED002_X: Vector = [1.0, -1.0]
SEED002_W: Matrix = [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]
SEED002_B1: Vector = [0.0, 0.0, 0.0]
SEED002_V: Matrix = [[1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]]
SEED002_B2: Vector = [0.0, 0.0]
SEED002_CLASS = 0


def sigmoid(z: float) -> float:
    """1 / (1 + e^-z), without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def forward_backward(x: Vector, W: Matrix, b1: Vector, V: Matrix, b2: Vector, c: int) -> dict[str, object]:
    """One forward and backward pass; returns every intermediate value and local gradient.

    Keys: k, h, o, y, loss (forward); y_d, o_d, v_d, b2_d, h_d, k_d, w_d, b1_d (backward, named as
    in the seed: `*_d` is dl/d*). Gradients have the shapes of their variables.
    """
    n_in, n_hid, n_out = len(x), len(b1), len(b2)
    if len(W) != n_in or any(len(row) != n_hid for row in W):
        raise ValueError(f"W must be {n_in} x {n_hid}")
    if len(V) != n_hid or any(len(row) != n_out for row in V):
        raise ValueError(f"V must be {n_hid} x {n_out}")
    if not 0 <= c < n_out:
        raise ValueError(f"class {c} out of range for {n_out} outputs")

    # ---- forward
    k = [b1[j] + sum(x[i] * W[i][j] for i in range(n_in)) for j in range(n_hid)]
    h = [sigmoid(kj) for kj in k]
    o = [b2[m] + sum(h[j] * V[j][m] for j in range(n_hid)) for m in range(n_out)]
    o_max = max(o)
    exps = [math.exp(om - o_max) for om in o]
    total = sum(exps)
    y = [e / total for e in exps]
    loss = -math.log(y[c])

    # ---- backward, one local derivative at a time
    y_d = [(-1.0 / y[c]) if m == c else 0.0 for m in range(n_out)]
    o_d = [0.0] * n_out
    for m in range(n_out):
        for i in range(n_out):
            dyi_dom = y[i] * ((1.0 if i == m else 0.0) - y[m])  # softmax Jacobian entry
            o_d[m] += y_d[i] * dyi_dom
    v_d = [[0.0] * n_out for _ in range(n_hid)]
    h_d = [0.0] * n_hid
    for m in range(n_out):
        for j in range(n_hid):
            v_d[j][m] += o_d[m] * h[j]
            h_d[j] += o_d[m] * V[j][m]
    b2_d = list(o_d)
    k_d = [h_d[j] * h[j] * (1.0 - h[j]) for j in range(n_hid)]
    w_d = [[k_d[j] * x[i] for j in range(n_hid)] for i in range(n_in)]
    b1_d = list(k_d)
    return {
        "k": k, "h": h, "o": o, "y": y, "loss": loss,
        "y_d": y_d, "o_d": o_d, "v_d": v_d, "b2_d": b2_d, "h_d": h_d, "k_d": k_d, "w_d": w_d, "b1_d": b1_d,
    }  # fmt: skip


def seed002_example() -> dict[str, object]:
    """Seed 002's Question 3: x = [1, -1], W = [[1,1,1],[-1,-1,-1]], V = [[1,1],[-1,-1],[-1,-1]],
    zero biases, class 0. Expected: v_d rows [-0.4404, 0.4404], b2_d [-0.5, 0.5], w_d = b1_d = 0."""
    return forward_backward(SEED002_X, SEED002_W, SEED002_B1, SEED002_V, SEED002_B2, SEED002_CLASS)
