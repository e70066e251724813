"""Session-wide test setup: offline mode, the torchvision shim, one torch thread."""

from __future__ import annotations

import pytest

import llmrec_local  # noqa: F401  (enters the compatibility layer: offline mode, the torchvision hook)

pytest_plugins = ["testkit.fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """Tests use tiny tensors: OpenMP threads only add contention on a shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
