"""Helpers of the LLM-layer tests (imported by tests/llm and tests/serving): the three augmentation answer schemas,
a request builder and a strict validity check."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

from llmrec_local.llm.base import GenRequest, GenResult, Sampling

K = 10
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller"]
TEXT = {"type": "string", "minLength": 1, "maxLength": 16}

#: liked/disliked candidate positions 0..K-1 (liked != disliked is a domain check above the backend, not schema)
PAIR_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["liked", "disliked"],
    "properties": {"liked": {"type": "integer", "enum": list(range(K))},
                   "disliked": {"type": "integer", "enum": list(range(K))}}}
ATTRIBUTE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["director", "country", "language"],
    "properties": {"director": TEXT, "country": TEXT, "language": TEXT}}
PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["age", "gender", "liked_genres", "disliked_genres", "country", "language"],
    "properties": {
        "age": {"type": "string", "enum": ["under 18", "18-24", "25-34", "35-44", "45+", "unknown"]},
        "gender": {"type": "string", "enum": ["female", "male", "unknown"]},
        "liked_genres": {"type": "array", "items": {"type": "string", "enum": GENRES}, "maxItems": 3},
        "disliked_genres": {"type": "array", "items": {"type": "string", "enum": GENRES}, "maxItems": 3},
        "country": TEXT, "language": TEXT}}
SCHEMAS = {"pair": PAIR_SCHEMA, "attribute": ATTRIBUTE_SCHEMA, "profile": PROFILE_SCHEMA}
# Worst case of a random model: every character a separate token, many escaped (\\uXXXX is 6 characters).
MAX_TOKENS = 320
SHARED_PREFIX = ("You are a movie recommendation assistant. Answer only with the requested JSON object. "
                 "Candidates are numbered from 0. Say unknown when you do not know. ") * 4


def make_requests(n: int, *, temperature: float = 1.0, max_tokens: int = MAX_TOKENS,
                  prefix: str = SHARED_PREFIX, kinds: Sequence[str] = tuple(SCHEMAS)) -> list[GenRequest]:
    """`n` requests cycling through the given schemas (default pair, attribute, profile); shared system prompt
    first, as the augmentation jobs do."""
    reqs = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        reqs.append(GenRequest(
            key=f"{kind}:{i}", json_schema=SCHEMAS[kind],
            messages=({"role": "system", "content": prefix},
                      {"role": "user", "content": f"user {i} watched comedy drama {i * 7 % 13}; task {kind}"}),
            sampling=Sampling(max_tokens=max_tokens, temperature=temperature, seed=i)))
    return reqs


def assert_all_valid(requests: Sequence[GenRequest], results: Sequence[GenResult]) -> None:
    """Every answer parses with strict json.loads and satisfies its own schema; keys come back in order."""
    assert [r.key for r in results] == [r.key for r in requests]
    bad = []
    for req, res in zip(requests, results, strict=True):
        try:
            jsonschema.validate(json.loads(res.text), req.json_schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            bad.append((req.key, res.text, res.finish_reason, res.error, str(exc)[:200]))
    assert not bad, f"{len(bad)}/{len(requests)} invalid answers: {bad[:3]}"


JsonHandler = Callable[[dict[str, Any], dict[str, str]], tuple[int, dict[str, Any]]]


def start_json_stub(handle: JsonHandler) -> tuple[ThreadingHTTPServer, str]:
    """A stand-in for an OpenAI-compatible server on 127.0.0.1 (a free port): every POST body is parsed as JSON and
    answered with ``handle(body, headers) -> (status, json)`` (header names lower-cased). Returns the running server
    (the caller shuts it down) and its ``/v1`` base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, payload = handle(body, {k.lower(): v for k, v in self.headers.items()})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
