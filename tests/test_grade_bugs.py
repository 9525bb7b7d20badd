"""Planted bugs: each costs exactly the tests of the broken class or function, with the right hint.

Every case copies a correct student solution (tests/grade_fixtures/<interface>/), plants one bug,
grades it in child processes, and checks the set of failed tests and the catching message.
"""

from __future__ import annotations

import pytest
from grade_helpers import failed, run_bug

LIN, RELU, SM, CE = "LinearModule", "ReLUModule", "SoftMaxModule", "CrossEntropyModule"

SLEEP_HANG = "y = self.out\n        import time\n        time.sleep(600)\n"

# name: (file, old, new, {failed test: substring of its message}, tests that fail without a hint check)
UVA2018 = {
    "gradient off by the batch size": (
        "dx = -y / x / x.shape[0]",
        "dx = -y / x",
        {f"{CE}.backward: matches the reference": "N = 6 (the batch size) times too large"},
        {f"{CE}.backward: finite differences"},
    ),
    "weight gradient averaged again": (
        'self.grads["weight"] = dout.T @ self.x',
        'self.grads["weight"] = dout.T @ self.x / len(dout)',
        {f"{LIN}.backward: matches the reference": "times too small"},
        {f"{LIN}.backward: finite differences"},
    ),
    "transposed weight gradient": (
        'self.grads["weight"] = dout.T @ self.x',
        'self.grads["weight"] = self.x.T @ dout',
        {
            f"{LIN}.backward: matches the reference": "transpose of the right gradient",
            f"{LIN}.backward: gradients shaped like the parameters": "transposed",
        },
        {f"{LIN}.backward: finite differences"},
    ),
    "missing max trick": (
        "e = np.exp(x - x.max(axis=1, keepdims=True))",
        "e = np.exp(x)",
        {f"{SM}.forward: stable for logits of magnitude 1e3": "the max trick"},
        set(),
    ),
    "max over the whole batch": (
        "e = np.exp(x - x.max(axis=1, keepdims=True))",
        "e = np.exp(x - x.max())",
        {f"{SM}.forward: stable for logits of magnitude 1e3": "each row's own maximum"},
        set(),
    ),
    "summed instead of averaged loss": (
        "out = -np.sum(y[y > 0] * np.log(picked)) / x.shape[0]",
        "out = -np.sum(y[y > 0] * np.log(picked))",
        {
            f"{CE}.forward: matches the reference": "summed over the batch instead of averaged",
            f"{CE}.backward: finite differences": "disagree by a factor of the batch size",
        },
        set(),
    ),
    "ReLU derivative at 0": (
        "dx = dout * (self.x > 0)",
        "dx = dout * (self.x >= 0)",
        {f"{RELU}.backward: derivative at 0": "ReLU derivative at 0"},
        set(),
    ),
    "upstream gradient modified in place": (
        "dx = dout * (self.x > 0)",
        "dx = dout\n        dx[self.x <= 0] = 0",
        {f"{RELU}.backward: input and upstream gradient unchanged": "upstream gradient in place"},
        set(),
    ),
    "hang": (
        "y = self.out\n",
        SLEEP_HANG,
        {f"{SM}.backward: matches the reference": "timed out after 3 s"},
        {
            f"{SM}.backward: {t}"
            for t in ("shape and dtype", "finite differences", "input and upstream gradient unchanged")
        },
    ),
    "exception": (
        'out = x @ self.params["weight"].T',
        'out = x @ self.params["weigth"].T',
        {f"{LIN}.forward: matches the reference": "KeyError: 'weigth' (modules.py line"},
        {
            f"{LIN}.{t}"
            for t in (
                "forward: shape and dtype",
                "backward: matches the reference",
                "backward: shape and dtype",
                "backward: finite differences",
                "backward: gradients shaped like the parameters",
                "backward: input and upstream gradient unchanged",
            )
        },
    ),
    "memory hog": (
        "picked = x[y > 0]",
        "hog = np.zeros((20000, 20000))\n        picked = x[y > 0]",
        {f"{CE}.forward: matches the reference": "ran out of memory"},
        {
            f"{CE}.{t}"
            for t in (
                "forward: returns a number",
                "forward: numerically stable",
                "backward: finite differences",
                "backward: input and targets unchanged",
            )
        },
    ),
}


@pytest.mark.parametrize("bug", list(UVA2018))
def test_uva2018_planted_bug(tmp_path, bug):
    old, new, hinted, others = UVA2018[bug]
    report = run_bug(tmp_path, "uva2018", "modules.py", old, new)
    got = failed(report)
    assert set(got) == set(hinted) | others, f"{bug}: failed {sorted(got)}"
    for name, text in hinted.items():
        assert text in got[name], f"{bug}: {name}: {got[name]}"


def test_uva2018_exit_at_import_fails_every_test_of_the_file(tmp_path):
    report = run_bug(
        tmp_path,
        "uva2018",
        "modules.py",
        "import numpy as np\n",
        "import numpy as np\nimport os\nos._exit(3)\n",
    )
    assert report.score == 0 and report.max_score > 0
    first = {t.unit: t.message for t in reversed(report.tests)}
    assert all(m == "exited with status 3 at import of modules.py" for m in first.values()), first
    assert any("modules.py: exited with status 3" in n for n in report.notes)


CHAINRULE = {
    "missing max trick": (
        "        return F.softmax(x, out=out)",
        "        e = np.exp(x)\n        return e / e.sum(axis=1, keepdims=True)",
        {"Softmax.forward: stable for logits of magnitude 1e3": "the max trick"},
        set(),
    ),
}


@pytest.mark.parametrize("bug", list(CHAINRULE))
def test_chainrule_planted_bug(tmp_path, bug):
    old, new, hinted, others = CHAINRULE[bug]
    report = run_bug(tmp_path, "chainrule", "modules.py", old, new)
    got = failed(report)
    assert set(got) == set(hinted) | others, f"{bug}: failed {sorted(got)}"
    for name, text in hinted.items():
        assert text in got[name], f"{bug}: {name}: {got[name]}"
