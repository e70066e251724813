"""transformers backend with our llguidance logits processor, on the random smoke model."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit.llm import assert_all_valid, make_requests

from llmrec_local.errors import ConfigError
from llmrec_local.llm.base import GenRequest, Sampling


@pytest.fixture(scope="module")
def backend(smoke_model: Path):
    from llmrec_local.llm.hf_backend import TransformersBackend

    b = TransformersBackend(smoke_model, dtype="float32", micro_batch_size=8, show_progress=False)
    yield b
    b.close()


def test_all_answers_schema_valid(backend) -> None:
    reqs = make_requests(9, temperature=1.0)
    results = backend.generate(reqs)
    assert_all_valid(reqs, results)
    assert all(r.error is None and r.finish_reason == "stop" for r in results)
    assert backend.usage.requests >= 9
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)


def test_greedy_is_deterministic_and_batch_independent(backend) -> None:
    reqs = make_requests(6, temperature=0.0, kinds=("pair",))
    first = [r.text for r in backend.generate(reqs)]
    # the same requests in another order and batch composition give the same answers
    again = backend.generate(list(reversed(reqs)))
    assert [r.text for r in reversed(again)] == first
    assert_all_valid(reqs, backend.generate(reqs))


def test_unconstrained_request_in_a_constrained_batch(backend) -> None:
    free = GenRequest("free", ({"role": "user", "content": "hello"},), None, Sampling(max_tokens=8))
    reqs = [*make_requests(2, kinds=("pair",)), free]
    results = backend.generate(reqs)
    assert_all_valid(reqs[:2], results[:2])
    assert results[2].key == "free" and results[2].completion_tokens <= 8


def test_bad_folder_is_a_clear_error(tmp_path: Path) -> None:
    from llmrec_local.llm.hf_backend import TransformersBackend

    with pytest.raises(ConfigError, match="not a local folder"):
        TransformersBackend(tmp_path / "nope")
    with pytest.raises(ConfigError, match="not a local folder"):
        TransformersBackend("Qwen/Qwen2-7B-Instruct")
