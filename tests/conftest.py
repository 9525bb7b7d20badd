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
