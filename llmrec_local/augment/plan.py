"""The token plan of an LLM job: what it will cost, stated before it starts and set beside what it cost after.

Before the first request of a job the runner logs one line (`plan_line`) from `token_plan`:

* **requests**: attempt 0 of every task of the shard that the request cache cannot answer (retries come on top and
  are not planned: they depend on the answers);
* **prompt tokens, counted**: the token ids of every request as the model reads it (the chat template with the
  generation prompt, `llmrec_local.llm.tokens`), summed; the same figure the backends report per request;
* **output tokens**: the hard bound ``requests x max_tokens`` (counted), and an expected figure where there is
  evidence: the mean completion of earlier jobs of the same model, backend and job on this host (the throughput
  log), else of the answers already in this job's request cache; otherwise no expected figure;
* **prefix-cache share**: the prompt tokens vLLM's prefix cache will serve, from the token ids in sending order
  (`llm.tokens.prefix_cache_hits`: full blocks of the engine's block size only, never the last prompt token, no
  eviction), over all prompt tokens, the definition of vLLM's own hit rate. ``per_batch`` counts every batch on a
  cold cache, what a pool of engines (executor ``ray``) sees at worst. A backend without a prefix cache
  (transformers) plans 0;
* **wall time**: (prompt tokens not served by the cache + expected output tokens, or the bound when none is expected)
  / throughput, the throughput being (prefill + output tokens) per second of generation measured by up to
  `HISTORY_WINDOW` earlier jobs of the same model and backend on this host (same job first), plus the engine start
  when it is not loaded yet; without such a record a labelled default (`DEFAULT_TOKENS_PER_S`, not a measurement).

After the job, `measured` collects the backend's figures for the same quantities (attempt 0 and all attempts), and
`record_throughput` appends them to the throughput log (``<LLMREC_CACHE_DIR>/llm_throughput.jsonl``), so the next
plan of that model and backend on this host is estimated from measurements.

Requests are sent in `prefix_order`: sorted by their token ids (by their text without a tokenizer), so prompts with
a common prefix are neighbours and share a batch. The order is a pure function of the requests, so a pool of engines
and a single process cut the same batches, and a rerun after a kill sends the same remaining requests.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hashing import default_cache_dir
from ..llm.base import GenRequest
from ..llm.tokens import (
    PromptCounter,
    TokenIds,
    n_tokens,
    pack_ids,
    prefix_cache_hits,
    prefix_order,
    shared_prefix_lengths,
)

log = logging.getLogger(__name__)

#: Throughput log (one JSON line per finished job that sent requests) inside the project's cache folder.
THROUGHPUT_LOG = "llm_throughput.jsonl"
#: Generation throughput ((prefill + output) tokens per second) assumed when this host has no record of the model and
#: backend: placeholders of the right order for a small model, labelled as defaults wherever they are used.
DEFAULT_TOKENS_PER_S = {"vllm": 2000.0, "openai": 2000.0, "transformers": 100.0}
#: The most recent records a throughput estimate averages.
HISTORY_WINDOW = 5


@dataclass(frozen=True)
class PlanContext:
    """What planning needs beside the job's requests.

    Attributes:
        tokenizer: the model's tokenizer (None: nothing is counted, the plan says so).
        backend: backend kind as recorded in the throughput log (``vllm``, ``transformers``, ``openai``; with
            ``+ray<N>`` for a pool of N engines).
        block_size: prefix-cache block size of the engine; None for a backend without a prefix cache.
        log_path: the throughput log (None: neither read nor written).
    """

    tokenizer: PromptCounter | None = None
    backend: str = "unknown"
    block_size: int | None = None
    log_path: Path | None = None


def default_log_path() -> Path:
    return default_cache_dir() / THROUGHPUT_LOG


#: Requests tokenized per tokenizer call: bounds the transient lists of Python ints (about 36 bytes per token).
TOKENIZE_CHUNK = 512


def _chat_text(request: GenRequest) -> str:
    """The request's chat as one string (roles and contents, unambiguously separated)."""
    return "\x00".join(f"{m['role']}\x01{m['content']}" for m in request.messages)


def prompt_ids(requests: Sequence[GenRequest], tokenizer: PromptCounter | None,
               memo: dict[str, bytes] | None = None) -> list[bytes] | None:
    """Token ids of every request's chat, packed (`llm.tokens.pack_ids`); None without a tokenizer.

    ``memo`` (chat text -> packed ids), kept by the caller across calls: a chat tokenized before is not tokenized
    again (a retry sends the same chat at another temperature)."""
    if tokenizer is None:
        return None
    memo = {} if memo is None else memo
    texts = [_chat_text(r) for r in requests]
    new = list({t: r for t, r in zip(texts, requests) if t not in memo}.items())
    for start in range(0, len(new), TOKENIZE_CHUNK):
        chunk = new[start:start + TOKENIZE_CHUNK]
        for (text, _), ids in zip(chunk, tokenizer.chat_ids([r.messages for _, r in chunk])):
            memo[text] = pack_ids(ids)
    return [memo[t] for t in texts]


def send_order(requests: Sequence[GenRequest], ids: Sequence[TokenIds] | None, keys: Sequence[str]) -> list[int]:
    """The order requests are sent in: by token ids (prompts with a common prefix side by side), ties by cache key;
    without token ids, by the chat's text (the same grouping up to tokenization)."""
    if ids is not None:
        return prefix_order(ids, keys)
    texts = [_chat_text(r) for r in requests]
    return sorted(range(len(requests)), key=lambda i: (texts[i], keys[i]))


def _read_log(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash costs that record only
            continue
    return rows


def _history(ctx: PlanContext, model_id: str, job: str) -> tuple[list[dict[str, Any]], str]:
    """Up to HISTORY_WINDOW most recent records of this host, model and backend (this job's own when it has any),
    and a phrase saying which."""
    host = socket.gethostname()
    same = [r for r in _read_log(ctx.log_path) if r.get("host") == host and r.get("model_id") == model_id
            and r.get("backend") == ctx.backend and r.get("generate_s", 0) > 0]
    own = [r for r in same if r.get("job") == job]
    if own:
        return own[-HISTORY_WINDOW:], f"{len(own[-HISTORY_WINDOW:])} earlier {job} job(s)"
    return same[-HISTORY_WINDOW:], f"{len(same[-HISTORY_WINDOW:])} earlier job(s) of other kinds"


def _fit_costs(records: Sequence[dict[str, Any]]) -> tuple[float, float] | None:
    """Seconds per computed prompt token `a` and per output token `b` by least squares over the records,
    ``generate_s ~ a * prefill_tokens + b * completion_tokens`` (prefill and decoding cost very different amounts
    per token), when the records mix the two in different proportions (jobs of different kinds) and both costs come
    out positive; None otherwise (one pooled rate is used then)."""
    p = [float(r["prefill_tokens"]) for r in records]
    o = [float(r["completion_tokens"]) for r in records]
    t = [float(r["generate_s"]) for r in records]
    spp, soo, spo = sum(x * x for x in p), sum(y * y for y in o), sum(x * y for x, y in zip(p, o))
    det = spp * soo - spo * spo
    if len(records) < 2 or det <= 1e-6 * spp * soo:
        return None
    spt, sot = sum(x * z for x, z in zip(p, t)), sum(y * z for y, z in zip(o, t))
    a, b = (spt * soo - sot * spo) / det, (sot * spp - spt * spo) / det
    return (a, b) if a > 0 and b > 0 else None


def token_plan(job: str, model_id: str, requests: Sequence[GenRequest], ids: Sequence[TokenIds] | None, *,
               batch_size: int, tasks: int, cached: int, ctx: PlanContext, engine_loaded: bool,
               cached_completion: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The plan of attempt 0 (module docstring), for `requests` in sending order with their token ids `ids`.

    Returns a JSON-ready dict: requests, tasks, cached, prompt_tokens (None when not counted), prompt_tokens_max,
    output_tokens_max, output_tokens_expected (+ its source), prefix_cache {block_size, hit_tokens, share,
    share_per_batch, token_share}, wall {estimate_s, tokens_per_s, source}."""
    n = len(requests)
    out_max = sum(r.sampling.max_tokens for r in requests)
    plan: dict[str, Any] = {"tasks": tasks, "cached": cached, "requests": n, "output_tokens_max": out_max,
                            "backend": ctx.backend, "counted_with": "model tokenizer" if ids is not None else None}
    records, which = _history(ctx, model_id, job)
    own = [r for r in records if r.get("job") == job and r.get("requests")]
    if own:
        per = sum(r["completion_tokens"] for r in own) / sum(r["requests"] for r in own)
        plan["output_tokens_expected"] = round(per * n)
        plan["output_expected_from"] = f"mean completion of {which} of this model and backend on this host"
    elif cached_completion[0]:
        per = cached_completion[1] / cached_completion[0]
        plan["output_tokens_expected"] = round(per * n)
        plan["output_expected_from"] = f"mean completion of the {cached_completion[0]} answers in the request cache"
    else:
        plan["output_tokens_expected"] = None
        plan["output_expected_from"] = "no evidence yet (no earlier job of this model and backend, empty cache)"
    if ids is None:
        plan.update(prompt_tokens=None, prefix_cache=None,
                    wall={"estimate_s": None, "source": "prompt tokens not counted (no local tokenizer)"})
        return plan
    lengths = [n_tokens(x) for x in ids]
    prompt = sum(lengths)
    plan["prompt_tokens"] = prompt
    plan["prompt_tokens_max"] = max(lengths, default=0)
    plan["prompt_tokens_mean"] = round(prompt / n, 1) if n else None
    hits = 0
    if ctx.block_size is not None:
        shared = shared_prefix_lengths(ids)
        hits = sum(prefix_cache_hits(ids, ctx.block_size, shared=shared))
        per_batch = sum(sum(prefix_cache_hits(ids[s:s + batch_size], ctx.block_size))
                        for s in range(0, n, batch_size))
        tok = sum(prefix_cache_hits(ids, 1, shared=shared))
        plan["prefix_cache"] = {
            "block_size": ctx.block_size, "hit_tokens": hits, "share": round(hits / prompt, 4) if prompt else None,
            "share_per_batch": round(per_batch / prompt, 4) if prompt else None,
            "token_share": round(tok / prompt, 4) if prompt else None}
    else:
        plan["prefix_cache"] = None
    prefill = prompt - hits
    output = plan["output_tokens_expected"] if plan["output_tokens_expected"] is not None else out_max
    costs = _fit_costs(records)
    if costs is not None:
        gen = costs[0] * prefill + costs[1] * output
        rate = (prefill + output) / gen if gen > 0 else 0.0
        source = (f"per-token costs fitted to {which} of this model and backend on this host (prefill "
                  f"{1 / costs[0]:.0f} tokens/s, output {1 / costs[1]:.0f} tokens/s)")
    elif records:
        rate = sum(r["prefill_tokens"] + r["completion_tokens"] for r in records) / sum(r["generate_s"]
                                                                                         for r in records)
        source = f"measured by {which} of this model and backend on this host"
    else:
        kind = ctx.backend.split("+")[0]
        rate = DEFAULT_TOKENS_PER_S.get(kind, DEFAULT_TOKENS_PER_S["vllm"])
        source = f"DEFAULT {rate:g} tokens/s for {kind} (not measured: no earlier job of this model and backend here)"
    if costs is None:
        gen = (prefill + output) / rate if n else 0.0
    starts = [r["startup_s"] for r in records if r.get("startup_s")]
    startup = 0.0 if engine_loaded or not starts else starts[-1]
    plan["wall"] = {"estimate_s": round(gen + startup, 1), "generate_s": round(gen, 1),
                    "startup_s": round(startup, 1), "tokens_per_s": round(rate, 1), "source": source,
                    "output_assumed": "expected" if plan["output_tokens_expected"] is not None else "bound"}
    return plan


def plan_line(job: str, model_id: str, plan: dict[str, Any]) -> str:
    """The one log line of a job's plan."""
    head = (f"{job} plan ({model_id}, {plan['backend']}): {plan['requests']} requests to send "
            f"({plan['cached']} of {plan['tasks']} answered by the request cache)")
    if plan["prompt_tokens"] is None:
        prompt = "prompt tokens not counted (no local tokenizer)"
    else:
        prompt = f"prompt {plan['prompt_tokens']} tokens (counted; max {plan['prompt_tokens_max']} per request)"
    expected = plan["output_tokens_expected"]
    output = f"output <= {plan['output_tokens_max']} tokens (max_tokens bound)" + (
        f", expected ~{expected} ({plan['output_expected_from']})" if expected is not None else ", no expected figure")
    pc = plan.get("prefix_cache")
    cache = ("prefix cache: none on this backend" if pc is None else
             f"prefix-cache share {pc['share']:.1%} (full {pc['block_size']}-token blocks; {pc['token_share']:.1%} "
             f"token-exact; {pc['share_per_batch']:.1%} with a cold cache per batch)") if plan["prompt_tokens"] else ""
    wall = plan["wall"]
    time_s = (f"est. {wall['estimate_s']:.0f} s ({wall['tokens_per_s']:g} tokens/s, {wall['source']})"
              if wall.get("estimate_s") is not None else f"no wall-time estimate ({wall['source']})")
    return "; ".join(p for p in (head, prompt, output, cache, time_s) if p)


def measured(per_attempt: Sequence[dict[str, Any]], *, generate_s: float, startup_s: float,
             block_size: int | None) -> dict[str, Any]:
    """The measured counterpart of a plan: attempt 0's requests, prompt and completion tokens and prefix-cache share
    (vLLM's counters, None on backends without them), the same over all attempts, and the generation time (without
    the engine start, reported apart)."""
    first = per_attempt[0] if per_attempt else {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                 "prefix_queries": 0, "prefix_hits": 0}

    def share(rows: Sequence[dict[str, Any]]) -> float | None:
        q = sum(r["prefix_queries"] for r in rows)
        return round(sum(r["prefix_hits"] for r in rows) / q, 4) if q else None

    return {
        "attempt0": {"requests": first["requests"], "prompt_tokens": first["prompt_tokens"],
                     "completion_tokens": first["completion_tokens"], "prefix_cache_share": share([first])},
        "all_attempts": {"requests": sum(r["requests"] for r in per_attempt),
                         "prompt_tokens": sum(r["prompt_tokens"] for r in per_attempt),
                         "completion_tokens": sum(r["completion_tokens"] for r in per_attempt),
                         "prefix_cache_share": share(per_attempt)},
        "per_attempt": list(per_attempt), "generate_s": round(generate_s, 3), "startup_s": round(startup_s, 3),
        "block_size": block_size,
    }


def record_throughput(ctx: PlanContext, model_id: str, job: str, result: dict[str, Any]) -> None:
    """Append this job's measured throughput to the log (nothing when it sent nothing or the log is off; the reader
    skips a record without generation time). An unwritable log only costs future estimates, never the job."""
    rows = result["per_attempt"]
    sent = sum(r["requests"] for r in rows)
    if ctx.log_path is None or not sent:
        return
    prompt = sum(r["prompt_tokens"] for r in rows)
    entry = {"host": socket.gethostname(), "model_id": model_id, "backend": ctx.backend, "job": job,
             "requests": sent, "prompt_tokens": prompt,
             "prefill_tokens": prompt - sum(r["prefix_hits"] for r in rows),
             "completion_tokens": sum(r["completion_tokens"] for r in rows),
             "generate_s": result["generate_s"], "startup_s": result["startup_s"] or None, "utc": time.time()}
    try:
        ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(ctx.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        log.warning("could not append to the throughput log %s: %s", ctx.log_path, exc)


def comparison_lines(plan: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Markdown table of summary.md: each counted figure of the plan beside the measured one. Only figures that are
    functions of the requests appear here (summary.md is identical for a single process and a pool of engines, like
    the records); the estimates that depend on this host's history (expected output, wall time) and the engine's own
    prefix-cache counter are in usage.json and the manifest (``token_plan``), beside the timings."""
    a0, every = result["attempt0"], result["all_attempts"]
    pc = plan.get("prefix_cache") or {}
    rows = [
        ("requests", str(plan["requests"]), f"{a0['requests']} (all attempts: {every['requests']})"),
        ("prompt tokens", "not counted" if plan["prompt_tokens"] is None else f"{plan['prompt_tokens']} (counted)",
         f"{a0['prompt_tokens']} (all attempts: {every['prompt_tokens']})"),
        ("output tokens", f"<= {plan['output_tokens_max']} (max_tokens bound)",
         f"{a0['completion_tokens']} (all attempts: {every['completion_tokens']})"),
        ("prefix-cache share", "n/a" if not pc else f"{pc['share']:.1%} ({pc['hit_tokens']} tokens in full "
         f"{pc['block_size']}-token blocks; {pc['share_per_batch']:.1%} with a cold cache per batch)",
         "usage.json (token_plan.measured)"),
    ]
    return ["| figure | planned | measured |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
