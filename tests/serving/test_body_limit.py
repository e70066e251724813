"""The recommendation API's request-body limit (issue 13): `BodySizeLimit` refuses an oversized body with 413 before
the app parses it, with or without Content-Length; the limit is configurable; the real server enforces it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmrec_local.errors import ConfigError
from serving.app import BodySizeLimit
from serving.config import ServingLimits
from serving.recommend_server import main as server_main


class _App:
    """Records the body the wrapped app received (None: it was never called)."""

    def __init__(self) -> None:
        self.body: bytes | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _call(limit: int, chunks: list[bytes], content_length: str | None) -> tuple[_App, list[dict[str, Any]], int]:
    """Run one POST through the middleware; returns (app, messages sent, chunks read)."""
    app, sent = _App(), []
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", content_length.encode())] if content_length is not None else []
    scope = {"type": "http", "method": "POST", "path": "/recommendations/fold-in", "headers": headers}
    asyncio.run(BodySizeLimit(app, max_bytes=limit)(scope, receive, send))
    return app, sent, read


def test_declared_oversize_is_refused_unread() -> None:
    app, sent, read = _call(100, [b"x" * 101], "101")
    assert app.body is None and read == 0 and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {"detail": "request body of 101 bytes is larger than the limit of 100 bytes "
                                                     "(max_body_bytes); send fewer users or items per request, or "
                                                     "start the server with a larger --max-body-bytes"}


def test_chunked_oversize_is_refused_as_it_arrives() -> None:
    app, sent, read = _call(100, [b"x" * 60, b"x" * 60, b"x" * 60], None)
    assert app.body is None and read == 2 and sent[0]["status"] == 413  # the third chunk is never read
    assert json.loads(sent[1]["body"])["detail"].startswith(
        "request body is larger than the limit of 100 bytes (max_body_bytes; 120 bytes received so far)")


def test_body_within_the_limit_reaches_the_app_whole() -> None:
    app, sent, _ = _call(100, [b"a" * 50, b"b" * 50], None)
    assert app.body == b"a" * 50 + b"b" * 50 and sent[0]["status"] == 200


def test_bad_content_length_is_400() -> None:
    app, sent, _ = _call(100, [b"{}"], "12abc")
    assert app.body is None and sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["detail"] == ("Content-Length '12abc' is not a number of bytes; send a valid "
                                                     "Content-Length or none (chunked)")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be >= 1, got 0"):
        ServingLimits(max_body_bytes=0)
    with pytest.raises(ConfigError, match="bad serving limit: max_body_bytes must be >= 1, got -5"):
        server_main(["--run", "nowhere", "--max-body-bytes", "-5"])


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b" " * min(size, total - start)


@pytest.mark.slow
def test_real_server_refuses_big_bodies_and_still_serves(client: httpx.Client) -> None:
    big = b'{"items": ["' + b"9" * (2 << 20) + b'"], "k": 5}'
    declared = client.post("/recommendations/fold-in", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["detail"].startswith(f"request body of {len(big)} bytes is larger than the limit of "
                                                "1048576 bytes")
    chunked = client.post("/recommendations/fold-in", content=_chunks(2 << 20),
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert chunked.json()["detail"].startswith("request body is larger than the limit of 1048576 bytes")
    assert client.get("/health").status_code == 200  # the service is still up
