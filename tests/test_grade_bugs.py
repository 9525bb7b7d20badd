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


# cs231n: (file, old, new, {failed test: substring of its message}, other tests that fail)
CS231N = {
    "transposed weight gradient": (
        "layers.py",
        "dw = x.reshape(x.shape[0], -1).T @ dout",
        "dw = dout.T @ x.reshape(x.shape[0], -1)",
        {"affine_backward: matches the reference": "transpose of the right gradient"},
        {"affine_backward: shape and dtype", "affine_backward: finite differences"},
    ),
    "ReLU derivative at 0": (
        "layers.py",
        "dx = dout * (x > 0)",
        "dx = dout * (x >= 0)",
        {"relu_backward: derivative at 0": "ReLU derivative at 0"},
        set(),
    ),
    "upstream gradient modified in place": (
        "layers.py",
        "dx = dout * (x > 0)",
        "dout[x <= 0] = 0\n    dx = dout",
        {"relu_backward: upstream gradient and cache unchanged": "upstream gradient in place"},
        set(),
    ),
    "missing max trick": (
        "layers.py",
        "shifted = x - x.max(axis=1, keepdims=True)",
        "shifted = x",
        {"softmax_loss: numerically stable": "the max trick"},
        set(),
    ),
    "summed instead of averaged loss": (
        "layers.py",
        "loss = -log_probs[np.arange(n), y].sum() / n",
        "loss = -log_probs[np.arange(n), y].sum()",
        {"softmax_loss: loss matches the reference": "summed over the batch instead of averaged"},
        {"softmax_loss: finite differences", "softmax_loss: numerically stable"},
    ),
    "batch-norm gradient off by the batch size": (
        "layers.py",
        "/ (n * std)",
        "/ std",
        {"batchnorm_backward: matches the reference": "N = 8 (the batch size) times too large"},
        {"batchnorm_backward: finite differences"},
    ),
    "dropout p taken as the drop probability": (
        "layers.py",
        "mask = (np.random.rand(*x.shape) < p) / p",
        "mask = (np.random.rand(*x.shape) >= p) / p",
        {"dropout_forward: train mode keeps p of the units, scaled by 1/p": "probability of keeping"},
        set(),
    ),
    "Adam without bias correction": (
        "optim.py",
        'mt = config["m"] / (1 - config["beta1"] ** config["t"])\n'
        '    vt = config["v"] / (1 - config["beta2"] ** config["t"])',
        'mt = config["m"]\n    vt = config["v"]',
        {"adam: 5 steps match the reference": "lacks the bias correction"},
        {"adam: default hyperparameters"},
    ),
    "exception": (
        "optim.py",
        'v = config.get("velocity", np.zeros_like(w))',
        'v = config["velocity"]',
        {"sgd_momentum: 5 steps match the reference": "KeyError: 'velocity' (optim.py line"},
        {"sgd_momentum: default hyperparameters"},
    ),
    "hang": (
        "optim.py",
        'config.setdefault("cache", np.zeros_like(w))',
        "import time\n    time.sleep(600)",
        {"rmsprop: 5 steps match the reference": "timed out after 3 s"},
        {"rmsprop: default hyperparameters"},
    ),
    "memory hog": (
        "layers.py",
        "    dropout_param, mask = cache\n    mode",
        "    hog = np.zeros((20000, 20000))\n    dropout_param, mask = cache\n    mode",
        {"dropout_backward: train mode applies the mask": "ran out of memory"},
        {"dropout_backward: test mode passes the gradient"},
    ),
}


@pytest.mark.parametrize("bug", list(CS231N))
def test_cs231n_planted_bug(tmp_path, bug):
    file, old, new, hinted, others = CS231N[bug]
    report = run_bug(tmp_path, "cs231n", file, old, new)
    got = failed(report)
    assert set(got) == set(hinted) | others, f"{bug}: failed {sorted(got)}"
    for name, text in hinted.items():
        assert text in got[name], f"{bug}: {name}: {got[name]}"


def test_cs231n_exit_at_import_of_optim_costs_only_the_optimizer_tests(tmp_path):
    report = run_bug(tmp_path, "cs231n", "optim.py", "import numpy as np\n", "import os\nos._exit(3)\n")
    got = failed(report)
    assert set(got) == {t.name for t in report.tests if t.unit in ("sgd_momentum", "rmsprop", "adam")}
    assert got["sgd_momentum: 5 steps match the reference"] == "exited with status 3 at import of optim.py"


UVA2022 = {
    "input_layer ignored by the Kaiming initialization": (
        "gain = 1.0 if input_layer else 2.0",
        "gain = 2.0",
        {"LinearModule.__init__: Kaiming initialization": "Kaiming's gain is 1 there"},
        set(),
    ),
    "transposed weight gradient": (
        'self.grads["weight"] = self.x.T @ dout',
        'self.grads["weight"] = dout.T @ self.x',
        {"LinearModule.backward: gradients shaped like the parameters": "transposed"},
        {"LinearModule.backward: matches the reference", "LinearModule.backward: finite differences"},
    ),
    "ELU derivative taken from exp(x) - 1": (
        "return dout * np.where(self.x > 0, 1.0, np.exp(np.minimum(self.x, 0)))",
        "return dout * np.where(self.x > 0, 1.0, np.exp(np.minimum(self.x, 0)) - 1)",
        {"ELUModule.backward: matches the reference": "differs from the reference"},
        {"ELUModule.backward: finite differences"},
    ),
    "summed instead of averaged loss": (
        "return -np.log(x[np.arange(n), y]).sum() / n",
        "return -np.log(x[np.arange(n), y]).sum()",
        {"CrossEntropyModule.forward: matches the reference": "summed over the batch instead of averaged"},
        {"CrossEntropyModule.backward: finite differences"},
    ),
}


@pytest.mark.parametrize("bug", list(UVA2022))
def test_uva2022_planted_bug(tmp_path, bug):
    old, new, hinted, others = UVA2022[bug]
    report = run_bug(tmp_path, "uva2022", "modules.py", old, new)
    got = failed(report)
    assert set(got) == set(hinted) | others, f"{bug}: failed {sorted(got)}"
    for name, text in hinted.items():
        assert text in got[name], f"{bug}: {name}: {got[name]}"


BN = ("uva2018", "uva2018_bn")
BN_BUGS = {
    "unbiased variance in the batch statistics": (
        "        var = input.var(dim=0, unbiased=False)\n        return self.gamma",
        "        var = input.var(dim=0)\n        return self.gamma",
        {"CustomBatchNormAutograd.forward: matches the reference": "differs from the reference"},
        {"CustomBatchNormAutograd.backward: matches the reference"},
    ),
    "hand-written backward off by the batch size": (
        "grad_input = gamma * inv_std / n * (n * grad_output",
        "grad_input = gamma * inv_std * (n * grad_output",
        {
            "CustomBatchNormManualFunction.backward: matches the reference": "N = 8 (the batch size)",
            "CustomBatchNormManualFunction.backward: gradcheck": "gradcheck failed",
        },
        # the handout's module is built on the function: it inherits the bug
        {"CustomBatchNormManualModule.backward: matches the reference"},
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("bug", list(BN_BUGS))
def test_uva2018_custom_batchnorm_planted_bug(tmp_path, bug):
    pytest.importorskip("torch")
    old, new, hinted, others = BN_BUGS[bug]
    report = run_bug(tmp_path, "uva2018", "custom_batchnorm.py", old, new, fixture=BN)
    got = failed(report)
    assert set(got) == set(hinted) | others, f"{bug}: failed {sorted(got)}"
    for name, text in hinted.items():
        assert text in got[name], f"{bug}: {name}: {got[name]}"
