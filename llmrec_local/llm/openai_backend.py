"""OpenAI-compatible HTTP backend (httpx), for a shared ``vllm serve`` in the lab (see ``serving/llm_server.py``).

Each request is one ``POST {base_url}/chat/completions`` with ``response_format = {"type": "json_schema", ...}``,
the portable constrained-output field (vLLM silently ignores the legacy ``guided_json``). A thread pool keeps at most
`concurrency` requests in flight; the server batches whatever is in flight, so concurrency, not our batch size, is
the throughput knob.

Failure policy: transport errors (connection refused, timeouts) and HTTP 408/429/5xx are retried up to
`max_retries` times with exponential backoff (`backoff_s` x 2^attempt, capped); other 4xx are the request's own fault
and become that request's `GenResult.error`. When the server stays unreachable after the retries, `generate` raises
`BackendError` naming the URL, so a job with a stopped server ends in seconds instead of hanging. A server that
accepts connections but never answers costs at most ``timeout_s x (max_retries + 1)`` plus the backoff sleeps and one
``/metrics`` probe of at most min(2 s, timeout_s): every request in flight times out and retries in parallel, and the
queued rest is cancelled.

API key: read from the environment variable named `api_key_env` (``LLMREC_API_KEY`` by default), never from a
command line (argv is visible in ``ps``). The value is only ever put in the Authorization header; every error text
that could echo it (a server's error body) is scrubbed with `redact`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import BackendError, ConfigError
from .base import GenRequest, GenResult, UsageStats

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}

#: Environment variable holding the API key unless another name is configured (``api_key_env``).
DEFAULT_API_KEY_ENV = "LLMREC_API_KEY"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env_name(name: str) -> str:
    """`name` when it is a valid environment variable name, else a ConfigError with the fix."""
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        # The value is not repeated: a malformed name is most often the key itself pasted in the wrong place.
        raise ConfigError(f"api_key_env is not an environment variable name (letters, digits and _, not starting "
                          f"with a digit); give the NAME of the variable holding the key (e.g. "
                          f"{DEFAULT_API_KEY_ENV}), never the key itself")
    return name


def api_key_from_env(name: str | None = DEFAULT_API_KEY_ENV) -> str | None:
    """The API key in environment variable `name` (None when `name` is None, or the variable is unset or empty)."""
    if name is None:
        return None
    return os.environ.get(check_env_name(name)) or None


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced by ``***`` (a server may echo the bearer token)."""
    return text.replace(secret, "***") if secret else text


class _Unreachable(Exception):
    """The server could not be reached (or kept failing) for one request after all retries."""


class _Dead:
    """Shared by the requests of one `generate` call: set with its reason when the first request gave up."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()


class OpenAIBackend:
    """`LLMBackend` over an OpenAI-compatible chat-completions endpoint.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model name (``--served-model-name``; our lab server uses the registry alias).
        api_key_env: name of the environment variable holding the API key, sent as a bearer token when set (the
            lab server hands it to vLLM as ``VLLM_API_KEY``); None sends no key.
        api_key: the key itself, for programmatic use only (overrides `api_key_env`); never take it from argv.
        concurrency: requests in flight at once.
        timeout_s: per-request timeout of every read and write (connect timeout is `connect_timeout_s`, capped at
            `timeout_s`), so a hung server costs at most ``timeout_s x (max_retries + 1)`` plus the backoff.
        max_retries: retries per request after the first try, for transport errors and 408/429/5xx.
        backoff_s / max_backoff_s: first retry delay and its cap (doubling in between).
        show_progress / progress_min: tqdm bar (stderr, with ETA) for batches of at least `progress_min`.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = DEFAULT_API_KEY_ENV,
                 api_key: str | None = None, concurrency: int = 16,
                 timeout_s: float = 120.0, connect_timeout_s: float = 5.0, max_retries: int = 3,
                 backoff_s: float = 0.5, max_backoff_s: float = 8.0, show_progress: bool = True,
                 progress_min: int = 64) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url={base_url!r} must start with http:// or https:// "
                              f"(e.g. http://127.0.0.1:8000/v1)")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ConfigError(f"concurrency={concurrency} (>= 1), max_retries={max_retries} (>= 0), "
                              f"timeout_s={timeout_s} (> 0) and backoff_s={backoff_s} (>= 0) out of range")
        import httpx

        self.api_key_env = api_key_env
        # Kept only to build the header and to scrub error texts; never logged or put in a message.
        self._secret = api_key or api_key_from_env(api_key_env)

        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"openai:{model}"
        self.usage = UsageStats()
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.show_progress = show_progress
        self.progress_min = progress_min
        headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
        self._lock = threading.Lock()
        self._metrics = True  # False once /metrics failed: a hung server is not probed again

    def _payload(self, req: GenRequest) -> dict[str, Any]:
        s = req.sampling
        body: dict[str, Any] = {"model": self.model, "messages": list(req.messages), "max_tokens": s.max_tokens,
                                "temperature": s.temperature, "top_p": s.top_p}
        if s.seed is not None:
            body["seed"] = s.seed
        if req.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": req.json_schema, "strict": True}}
        return body

    def _http_error(self, resp: Any, limit: int) -> str:
        """``HTTP 401 Unauthorized: <body>`` (scrubbed of the key), with the fix for an authentication error."""
        text = f"HTTP {resp.status_code} {resp.reason_phrase}: {redact(resp.text[:limit], self._secret)}".rstrip()
        if resp.status_code in (401, 403):
            where = f"${self.api_key_env}" if self.api_key_env else "the environment (api_key_env)"
            text += (f" (the server refused the API key from {where}; set the server's key there)" if self._secret
                     else f" (no API key was sent: the server needs one; set it in {where})")
        return text

    def _call(self, req: GenRequest, dead: _Dead) -> GenResult:
        body = self._payload(req)
        last = ""
        for attempt in range(self.max_retries + 1):
            if dead.event.is_set():
                # Another request already used up its retries: a worker freed by that failure must not start a
                # queued request (or a new attempt), or a hung server would cost one more round of timeouts.
                raise _Unreachable(dead.reason)
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))
            try:
                resp = self._client.post("/chat/completions", json=body)
            except self._httpx.TransportError as exc:  # refused, reset, timeout: the server may come back
                last = f"{type(exc).__name__}: {redact(str(exc), self._secret)}"
                continue
            if resp.status_code in _RETRY_STATUS:
                last = self._http_error(resp, 300)
                continue
            if resp.status_code != 200:  # the request itself is bad: retrying cannot help
                return GenResult(req.key, "", finish_reason="error", error=self._http_error(resp, 500))
            try:
                data = resp.json()
                choice = data["choices"][0]
                usage = data.get("usage") or {}
                return GenResult(req.key, choice["message"].get("content") or "",
                                 finish_reason=choice.get("finish_reason") or "stop",
                                 prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                 completion_tokens=int(usage.get("completion_tokens", 0)))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                return GenResult(req.key, "", finish_reason="error",
                                 error=f"malformed response ({exc}): {redact(resp.text[:300], self._secret)}")
        dead.set(last)
        raise _Unreachable(last)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Send all `requests` with bounded concurrency (order preserved).

        Raises:
            BackendError: a request still failed with a transport error or 408/429/5xx after `max_retries`.
        """
        if not requests:
            return []
        start = time.perf_counter()
        cache_before = self.prefix_cache_counters()
        bar = None
        if self.show_progress and len(requests) >= self.progress_min:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(requests), desc="openai", file=sys.stderr, dynamic_ncols=True)
        results: list[GenResult] = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai") as pool:
            dead = _Dead()
            futures = [pool.submit(self._call, r, dead) for r in requests]
            try:
                for fut in futures:
                    results.append(fut.result())
                    if bar is not None:
                        bar.update(1)
            except _Unreachable as exc:
                for f in futures:  # do not keep hammering a dead server with the queued rest
                    f.cancel()
                raise BackendError(
                    f"OpenAI-compatible server at {self.base_url} failed after {self.max_retries} retries "
                    f"(timeout {self.timeout_s:g} s each): {exc}. Is it running? Start it with `python -m "
                    f"serving.llm_server --model <alias>` and pass its URL as --base-url; a slow server needs a "
                    f"larger --request-timeout, a busy one more --request-retries") from None
            finally:
                if bar is not None:
                    bar.close()
        cache_after = self.prefix_cache_counters() if cache_before is not None else None
        with self._lock:
            if cache_before is not None and cache_after is not None:
                # server-wide counters: other clients' traffic during this call is included
                self.usage.prefix_cache_queries += cache_after[0] - cache_before[0]
                self.usage.prefix_cache_hits += cache_after[1] - cache_before[1]
            self.usage.requests += len(results)
            self.usage.prompt_tokens += sum(r.prompt_tokens for r in results)
            self.usage.completion_tokens += sum(r.completion_tokens for r in results)
            self.usage.wall_s += time.perf_counter() - start
        return results

    def prefix_cache_counters(self) -> tuple[int, int] | None:
        """(queries, hits) of the server's prefix cache from its Prometheus ``/metrics`` (vLLM), or None."""
        if not self._metrics:
            return None
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        try:
            # A short probe, tried until it first fails: these are statistics, and a hung server must cost no more
            # than the request timeouts and retries promise (plus this one probe).
            resp = self._client.get(f"{root}/metrics", timeout=min(2.0, self.timeout_s))
        except self._httpx.HTTPError:
            self._metrics = False
            return None
        if resp.status_code != 200:
            return None
        text = resp.text
        values: dict[str, float] = {}
        for line in text.splitlines():
            for name in ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total"):
                if line.startswith(name):
                    values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[-1])
        if len(values) < 2:
            return None
        return int(values["vllm:prefix_cache_queries_total"]), int(values["vllm:prefix_cache_hits_total"])

    def close(self) -> None:
        self._client.close()
