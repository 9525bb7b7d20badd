"""Shared test helpers: where the real data sets are, and torch on one thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared/datasets beside the checkout (CI has it); CHAINRULE_SHARED_DATASETS overrides.
SHARED_DATASETS = Path(
    os.environ.get("CHAINRULE_SHARED_DATASETS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: torch's thread pool only adds overhead (x20 on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _bf16_off_unless_asked(request, monkeypatch):
    """The suite does not depend on the CPU it runs on: `--precision auto` finds bf16 unavailable
    (and trains fp32) unless a test takes the `host_bf16` fixture or patches this itself."""
    if "host_bf16" in request.fixturenames:
        return
    from chainrule.train import precision

    monkeypatch.setattr(precision, "bf16_unavailable", lambda cfg: "bf16 is off in the tests")


@pytest.fixture
def host_bf16():
    """This machine's own answer to whether bf16 can run (see `_bf16_off_unless_asked`)."""
