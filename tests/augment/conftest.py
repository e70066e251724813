"""Fixtures of the augmentation tests: the smoke model. The tiny dataset and stand-in base run are shared
(`testkit.fixtures`); scripted FakeBackend answers live in `testkit.fakes`."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny random smoke LLM (alias ``smoke``), with a hermetic vLLM cache."""
    import os

    from llmrec_local.llm.smoke import build_smoke_model

    os.environ.setdefault("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm_cache")))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    root = tmp_path_factory.mktemp("models")
    build_smoke_model(root / "llmrec-smoke-llm")
    return root
