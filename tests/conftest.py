"""Session-wide test setup: offline mode, the torchvision shim, one torch thread."""

from __future__ import annotations

import pytest

import llmrec_local  # noqa: F401  (enters the compatibility layer: offline mode, the torchvision hook)

pytest_plugins = ["testkit.fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`extended` tests (minutes each, a longer variant of what a CI test covers) run only when asked for, so that
    CI stays under its 30-minute budget: `LLMREC_EXTENDED_TESTS=1 bash scripts/test.sh -m extended`."""
    import os

    if os.environ.get("LLMREC_EXTENDED_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="extended variant: set LLMREC_EXTENDED_TESTS=1 to run it")
    for item in items:
        if "extended" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """Tests use tiny tensors: OpenMP threads only add contention on a shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _hermetic_cache_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Caches (file hashes, encoders) go to a session folder, never into the user's home."""
    import os

    previous = os.environ.get("LLMREC_CACHE_DIR")
    os.environ["LLMREC_CACHE_DIR"] = str(tmp_path_factory.mktemp("llmrec_cache_session"))
    yield
    if previous is None:
        os.environ.pop("LLMREC_CACHE_DIR", None)
    else:
        os.environ["LLMREC_CACHE_DIR"] = previous
