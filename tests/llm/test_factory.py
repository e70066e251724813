"""make_backend: kind resolution, registry settings, option checking, and refusal of non-local models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from testkit.llm import assert_all_valid, make_requests

from llmrec_local.errors import ConfigError, ModelNotFoundError
from llmrec_local.llm import make_backend, resolve_kind
from llmrec_local.llm.openai_backend import OpenAIBackend


def test_resolve_kind() -> None:
    expected = "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"
    assert resolve_kind("auto") == expected
    assert resolve_kind("openai") == "openai"
    with pytest.raises(ConfigError, match="not one of"):
        resolve_kind("ollama")


def test_transformers_backend_from_smoke_folder(smoke_model: Path) -> None:
    backend = make_backend("transformers", str(smoke_model), micro_batch_size=4, show_progress=False)
    assert backend.model_id.startswith("smoke@")  # registry identity, used by request caches
    reqs = make_requests(3, kinds=("pair",))
    assert_all_valid(reqs, backend.generate(reqs))
    backend.close()


def test_option_and_argument_errors(smoke_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option.*micro_batch"):
        make_backend("transformers", str(smoke_model), micro_batch=4)
    with pytest.raises(ConfigError, match="base_url"):
        make_backend("openai", "qwen2-7b")
    with pytest.raises(ConfigError, match="only used by the 'openai'"):
        make_backend("transformers", str(smoke_model), base_url="http://127.0.0.1:1/v1")
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        make_backend("transformers", "Qwen/Qwen2-7B-Instruct", models_dir=tmp_path)


def test_openai_needs_no_local_weights() -> None:
    backend = make_backend("openai", "qwen2-7b", base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert isinstance(backend, OpenAIBackend) and backend.model == "qwen2-7b"
    backend.close()
