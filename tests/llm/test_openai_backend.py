"""OpenAI-compatible HTTP backend against a local stub server: payload, retries, bounded concurrency, dead server.
(The real `vllm serve` path is tested in tests/serving/test_llm_server.py.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from testkit.llm import PAIR_SCHEMA, make_requests, start_json_stub

from llmrec_local.errors import BackendError, ConfigError
from llmrec_local.llm.openai_backend import OpenAIBackend
from serving import free_port

Reply = Callable[[dict[str, Any], int], tuple[int, dict[str, Any]]]


class _Stub:
    """Chat-completions stub: `reply(body, call_number) -> (status, json)`; records bodies and peak concurrency."""

    def __init__(self, reply: Reply, delay_s: float = 0.0) -> None:
        self.reply, self.delay_s = reply, delay_s
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = self.peak = 0
        self.lock = threading.Lock()


@pytest.fixture
def stub() -> Iterator[Callable[..., tuple[_Stub, str]]]:
    servers = []

    def start(reply: Reply, delay_s: float = 0.0) -> tuple[_Stub, str]:
        state = _Stub(reply, delay_s)

        def handle(body: dict[str, Any], _headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
            with state.lock:
                state.bodies.append(body)
                n = len(state.bodies)
                state.in_flight += 1
                state.peak = max(state.peak, state.in_flight)
            time.sleep(state.delay_s)
            answer = state.reply(body, n)
            with state.lock:
                state.in_flight -= 1
            return answer

        server, url = start_json_stub(handle)
        servers.append(server)
        return state, url

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def ok(text: str) -> tuple[int, dict[str, Any]]:
    return 200, {"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def test_payload_order_and_usage(stub) -> None:
    state, url = stub(lambda body, n: ok(json.dumps({"key": body["messages"][1]["content"]})))
    backend = OpenAIBackend(url, "qwen2-7b", concurrency=4, show_progress=False)
    reqs = make_requests(9, kinds=("pair",))
    results = backend.generate(reqs)
    assert [r.key for r in results] == [r.key for r in reqs]
    assert [json.loads(r.text)["key"] for r in results] == [r.messages[1]["content"] for r in reqs]
    body = state.bodies[0]
    assert body["model"] == "qwen2-7b" and "guided_json" not in body
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": PAIR_SCHEMA, "strict": True}}
    assert backend.usage.requests == 9 and backend.usage.prompt_tokens == 63 and backend.usage.completion_tokens == 27
    backend.close()


def test_concurrency_is_bounded(stub) -> None:
    state, url = stub(lambda body, n: ok("{}"), delay_s=0.05)
    OpenAIBackend(url, "m", concurrency=3, show_progress=False).generate(make_requests(12, kinds=("pair",)))
    assert 1 <= state.peak <= 3


def test_transient_errors_are_retried_and_request_errors_are_not(stub) -> None:
    def reply(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
        if body["messages"][1]["content"].startswith("user 1 "):
            return 400, {"error": "bad schema"}
        return (503, {"error": "busy"}) if n <= 2 else ok('{"liked":1,"disliked":2}')

    state, url = stub(reply)
    backend = OpenAIBackend(url, "m", concurrency=1, max_retries=3, backoff_s=0.01, show_progress=False)
    results = backend.generate(make_requests(3, kinds=("pair",)))
    assert results[0].text == '{"liked":1,"disliked":2}' and results[0].error is None  # after two 503s
    assert results[1].error is not None and "HTTP 400" in results[1].error and results[1].finish_reason == "error"
    assert results[2].error is None


def test_dead_server_fails_fast_with_a_clear_error() -> None:
    port = free_port()  # a port nobody listens on
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff_s=0.1, show_progress=False)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=rf"127.0.0.1:{port}.*after 2 retries.*serving.llm_server"):
        backend.generate(make_requests(20, kinds=("pair",)))
    assert time.perf_counter() - start < 10


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="http"):
        OpenAIBackend("127.0.0.1:8000", "m")
    with pytest.raises(ConfigError, match="concurrency"):
        OpenAIBackend("http://127.0.0.1:8000/v1", "m", concurrency=0)
