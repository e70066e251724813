"""The HTTP LLM client's policy (issue 13): the API key comes from an environment variable and never shows in a
message, a dry run, a manifest, a cache or a log; timeout, retries and concurrency come from the CLI and the recipe
and bound what a hung server costs; a job that fails on backend errors quotes them. Servers are stubs on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from testkit.llm import make_requests, start_json_stub

from llmrec_local.augment.__main__ import build_config, main, run_parser
from llmrec_local.augment.config import AugmentConfig, augment_config
from llmrec_local.augment.runner import _backend_error_quotes
from llmrec_local.augment.stage import augment, make_backend
from llmrec_local.errors import AugmentError, BackendError, ConfigError
from llmrec_local.llm.openai_backend import OpenAIBackend

KEY = "sk-test-Zq81xVv0secret"  # a recognisable value to search for everywhere it must not be

Reply = Callable[[dict[str, Any], dict[str, str]], tuple[int, dict[str, Any]]]


@pytest.fixture
def stub() -> Iterator[Callable[[Reply], tuple[list[dict[str, str]], str]]]:
    """Start chat-completion stubs: ``reply(body, headers) -> (status, json)``; returns (headers seen, base URL)."""
    servers: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> tuple[list[dict[str, str]], str]:
        seen: list[dict[str, str]] = []

        def handle(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
            seen.append(headers)
            return reply(body, headers)

        server, url = start_json_stub(handle)
        servers.append(server)
        return seen, url

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def ok(_body: dict[str, Any], _headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    return 200, {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}], "usage": {}}


def unauthorized(_body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    # echoes the token it was sent, as a careless proxy might: the client must scrub it
    return 401, {"error": "Unauthorized", "got": headers.get("authorization", "")}


def test_key_is_read_from_the_default_variable(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_API_KEY", KEY)
    seen, url = stub(ok)
    OpenAIBackend(url, "m", show_progress=False).generate(make_requests(1, kinds=("pair",)))
    assert seen[0]["authorization"] == f"Bearer {KEY}"


def test_key_variable_name_is_configurable(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_API_KEY", "the-wrong-one")
    monkeypatch.setenv("LAB_LLM_KEY", KEY)
    seen, url = stub(ok)
    OpenAIBackend(url, "m", api_key_env="LAB_LLM_KEY", show_progress=False).generate(make_requests(1, kinds=("pair",)))
    assert seen[0]["authorization"] == f"Bearer {KEY}"


def test_no_key_sends_no_header(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREC_API_KEY", raising=False)
    seen, url = stub(ok)
    OpenAIBackend(url, "m", show_progress=False).generate(make_requests(1, kinds=("pair",)))
    assert "authorization" not in seen[0]


def test_refused_key_is_explained_and_scrubbed(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_API_KEY", KEY)
    _, url = stub(unauthorized)
    result = OpenAIBackend(url, "m", show_progress=False).generate(make_requests(1, kinds=("pair",)))[0]
    assert result.error == ('HTTP 401 Unauthorized: {"error": "Unauthorized", "got": "Bearer ***"} (the server '
                            "refused the API key from $LLMREC_API_KEY; set the server's key there)")


def test_missing_key_is_explained(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREC_API_KEY", raising=False)
    _, url = stub(unauthorized)
    result = OpenAIBackend(url, "m", show_progress=False).generate(make_requests(1, kinds=("pair",)))[0]
    assert result.error == ('HTTP 401 Unauthorized: {"error": "Unauthorized", "got": ""} (no API key was sent: the '
                            "server needs one; set it in $LLMREC_API_KEY)")


def test_a_key_pasted_as_the_variable_name_is_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as info:
        OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env=KEY)
    assert KEY not in str(info.value) and "give the NAME of the variable" in str(info.value)


def test_hung_server_costs_at_most_timeout_times_attempts() -> None:
    """A server that accepts connections and never answers: 3 attempts x 0.3 s, plus backoff and one probe."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel accepts connections into the backlog; nobody ever reads or answers
    port = listener.getsockname()[1]
    try:
        backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", timeout_s=0.3, max_retries=2, backoff_s=0.05,
                                concurrency=4, show_progress=False)
        start = time.perf_counter()
        with pytest.raises(BackendError, match=r"failed after 2 retries \(timeout 0.3 s each\): ReadTimeout"):
            backend.generate(make_requests(24, kinds=("pair",)))  # 6x the concurrency: queued requests never start
        wall = time.perf_counter() - start
    finally:
        listener.close()
    # lower bound: every attempt really waited; upper bound: 3 x 0.3 + 0.05 + 0.1 backoff + 0.3 probe = 1.35 s, plus
    # slack; a second round of timeouts (a freed worker starting a queued request) would take it past 2.4 s
    assert 0.9 <= wall < 1.9


@pytest.mark.parametrize(("key", "value", "message"), [
    ("request_timeout_s", 0, "request_timeout_s=0.0 is out of range; choose a value in (0, 3600]"),
    ("request_retries", 11, "request_retries=11 is out of range; choose a value in [0, 10]"),
    ("concurrency", 0, "concurrency=0 is out of range; choose a value in [1, 1024]"),
    ("request_backoff_s", -1.0, "request_backoff_s=-1.0 is out of range; choose a value in [0, 60]"),
])
def test_transport_settings_are_range_checked(key: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        augment_config({key: value})
    assert str(info.value) == f"augment: {message}"


def test_a_key_in_the_recipe_is_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as info:
        augment_config({"api_key": KEY})
    assert KEY not in str(info.value)
    assert str(info.value).startswith("augment.api_key: an API key is never read from a recipe or a command line")


def test_api_key_flag_is_refused_without_echo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_parser().parse_args(["--api-key", KEY])
    err = capsys.readouterr().err
    assert info.value.code == 2 and KEY not in err
    assert "error: --api-key is not accepted: a key on the command line is visible to every user in `ps`" in err


def test_recipe_then_flags_set_the_transport(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('[augment]\nrequest_timeout_s = 30.0\nrequest_retries = 1\nconcurrency = 8\n'
                      'api_key_env = "LAB_KEY"\n')
    config = build_config(run_parser().parse_args(["--recipe", str(recipe), "--concurrency", "2"]))
    assert config.http_options() == {"api_key_env": "LAB_KEY", "timeout_s": 30.0, "max_retries": 1,
                                     "backoff_s": 0.5, "concurrency": 2}
    args = run_parser().parse_args(["--recipe", str(recipe), "--request-timeout", "5", "--request-retries", "0",
                                    "--api-key-env", "OTHER_KEY"])
    assert build_config(args).http_options() == {"api_key_env": "OTHER_KEY", "timeout_s": 5.0, "max_retries": 0,
                                                 "backoff_s": 0.5, "concurrency": 8}


def test_the_backend_honours_the_config(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    seen, url = stub(ok)
    config = AugmentConfig(backend="openai", model="m", request_timeout_s=7.5, request_retries=1, concurrency=3,
                           api_key_env="LAB_KEY")
    backend = make_backend(config, base_url=url)
    try:
        assert isinstance(backend, OpenAIBackend)
        assert (backend.timeout_s, backend.max_retries, backend.concurrency) == (7.5, 1, 3)
        backend.generate(make_requests(1, kinds=("pair",)))
        assert seen[0]["authorization"] == f"Bearer {KEY}"
    finally:
        backend.close()


def test_dry_run_names_the_variable_never_the_key(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_API_KEY", KEY)
    assert main(["--dry-run", "--backend", "openai", "--request-timeout", "9", "--concurrency", "5"]) == 0
    out = capsys.readouterr().out
    augment_table = json.loads(out)["augment"]
    assert KEY not in out
    assert {k: augment_table[k] for k in ("api_key_env", "request_timeout_s", "concurrency")} == {
        "api_key_env": "LLMREC_API_KEY", "request_timeout_s": 9.0, "concurrency": 5}


def test_job_failing_on_401_quotes_it_and_leaks_the_key_nowhere(
        stub, monkeypatch: pytest.MonkeyPatch, dataset_path: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("LLMREC_API_KEY", KEY)
    _, url = stub(unauthorized)
    config = AugmentConfig(backend="openai", model="m", jobs=("attributes",), max_retries=0, max_requests=4)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AugmentError) as info:
        augment(config, dataset_path, tmp_path, base_url=url, progress=False)
    message = str(info.value)
    assert ('backend errors: "HTTP 401 Unauthorized: {\\"error\\": \\"Unauthorized\\", \\"got\\": \\"Bearer ***\\"} '
            '(the server refused the API key from $LLMREC_API_KEY; set the server\'s key there)". Inspect') in message
    assert "job attributes: 4 of 4 entities (100.0%) have no valid answer" in message
    assert KEY not in message and KEY not in caplog.text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written  # the failures table, the request cache
    assert [p.name for p in written if KEY.encode() in p.read_bytes()] == []


def test_failure_message_quotes_the_first_three_distinct_backend_errors() -> None:
    failures = [{"reason": "backend_error", "detail": d} for d in ("HTTP 400 a", "HTTP 400 a", "HTTP 400 b",
                                                                     "HTTP 500 c", "HTTP 400 d")]
    failures.insert(1, {"reason": "invalid_json", "detail": "not JSON"})
    assert _backend_error_quotes(failures) == ('; backend errors: "HTTP 400 a", "HTTP 400 b", "HTTP 500 c" '
                                               "(and 1 more distinct)")
    assert _backend_error_quotes([{"reason": "invalid_json", "detail": "x"}]) == ""
