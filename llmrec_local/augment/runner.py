"""The job runner: requests -> cache -> backend -> parse/validate -> retries -> artifact.

One `Job` describes what to ask (tasks, messages, schema) and how to read the answers; `run_job` does the rest,
identically for every job:

1. build attempt 0's request for every task; look each up in the request cache; log the token plan of the missing
   ones (`plan`: requests, counted prompt tokens, output bound, prefix-cache share, estimated wall time) and send them
   sorted by their token ids (common prefixes side by side), in batches, each batch stored in the cache in one
   durable transaction as soon as it returns (a "shard" of results);
2. parse and domain-check every answer; a failure becomes a failure record (reason, raw text) and, while attempts
   remain, the task gets a new request with a derived seed and a higher temperature (a new cache entry);
3. if the fraction of tasks left without a valid record exceeds ``max_failure_rate``, raise AugmentError (the
   staging folder with the failures file is kept for inspection, and the cache makes the rerun cheap);
4. write the records, failures, raw answers used, usage and summary (layout: `llmrec_local.artifacts.augmentation`)
   and the manifest through ``ArtifactWriter(resume=True)``, with the token plan beside the measured figures.

Requests, seeds and temperatures are pure functions of (config, task, attempt), so a job killed at any instant and
rerun rebuilds the same requests, finds every finished one in the cache (no repeated LLM call) and writes the same
records. The sending order is a pure function of the requests too, so the batches do not depend on the executor.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from tqdm import tqdm

from ..artifacts.augmentation import (
    STAGE,
    failure_schema,
    failures_path,
    response_schema,
    write_failures,
    write_records,
    write_usage,
)
from ..artifacts.base import ArtifactWriter, artifact_digest, is_complete, reusable, write_summary
from ..errors import AugmentError
from ..hashing import stable_hash
from ..llm.base import GenRequest, GenResult, LLMBackend, Sampling, UsageStats, answer_batches
from ..seeding import derive_seed
from .cache import RequestCache
from .config import AugmentConfig
from .parse import ParseFailure, Reason
from .plan import (
    PlanContext,
    comparison_lines,
    measured,
    plan_line,
    prompt_ids,
    record_throughput,
    send_order,
    token_plan,
)
from .prompts import Messages

log = logging.getLogger(__name__)

MAX_RETRY_TEMPERATURE = 1.5


@dataclass(frozen=True)
class Task:
    """One entity (user or item) to ask about. `context` is whatever the job needs to build and check it."""

    entity: int
    key: str
    context: Any = None


@dataclass(frozen=True)
class Skipped:
    """An entity no request is made for (e.g. a user without history), recorded as a failure with its reason."""

    entity: int
    key: str
    reason: Reason
    detail: str


class Job(Protocol):
    """What a job provides to the runner."""

    name: str  # "pairs" | "attributes" | "profiles"
    artifact: str  # folder name under <out>/augment/
    entity: str  # "user" | "item": the id column of records.parquet
    template_version: str

    def settings(self) -> dict[str, Any]:
        """Job settings and input fingerprints that determine the records (enter the config hash)."""
        ...

    def plan(self) -> tuple[list[Task], list[Skipped]]:
        """All tasks in entity order, and the entities skipped without a request."""
        ...

    def messages(self, task: Task) -> Messages: ...

    def schema(self, task: Task) -> dict[str, Any]: ...

    def parse(self, task: Task, result: GenResult) -> dict[str, Any] | ParseFailure: ...

    def frame(self, records: list[dict[str, Any]]) -> pl.DataFrame:
        """Typed records table (entity column first), sorted by entity."""
        ...

    def describe(self, records: pl.DataFrame) -> list[str]:
        """Markdown lines for summary.md: distributions of the generated values."""
        ...


class LazyBackend:
    """A backend created on the first `generate` call, so a fully cached rerun never loads the model.

    `model_id` must be known up front because it enters every cache key."""

    def __init__(self, model_id: str, factory: Callable[[], LLMBackend]) -> None:
        self.model_id = model_id
        self._factory = factory
        self._backend: LLMBackend | None = None
        #: seconds the factory took (the engine start), 0 until the first `generate`
        self.startup_s = 0.0

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def usage(self) -> UsageStats:
        return self._backend.usage if self._backend is not None else UsageStats()

    @property
    def block_size(self) -> int | None:
        """The loaded engine's prefix-cache block size (None before loading, or for a backend without one)."""
        return getattr(self._backend, "block_size", None)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self._backend is None:
            start = time.perf_counter()
            self._backend = self._factory()
            self.startup_s = time.perf_counter() - start
        return self._backend.generate(requests)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


@dataclass
class _Outcome:
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: int = 0
    cached: int = 0
    backend_errors: int = 0
    send_s: float = 0.0
    new_prompt_tokens: int = 0
    new_completion_tokens: int = 0
    plan: dict[str, Any] = field(default_factory=dict)
    per_attempt: list[dict[str, Any]] = field(default_factory=list)
    startup_s: float = 0.0


def select_shard(tasks: Sequence[Task], config: AugmentConfig) -> list[Task]:
    """The tasks of this shard (``entity % shard_count == shard_index``), cut to ``max_requests``."""
    mine = [t for t in tasks if t.entity % config.shard_count == config.shard_index]
    return mine[: config.max_requests] if config.max_requests is not None else mine


def job_config_hash(job: Job, config: AugmentConfig, model_alias: str) -> str:
    """Identity of a job's artifact: everything that determines its records."""
    return stable_hash({
        "job": job.name, "template": job.template_version, "model": model_alias,
        "sampling": config.sampling_for(job.name), "seed": config.seed, "max_retries": config.max_retries,
        "retry_temperature_step": config.retry_temperature_step, "max_failure_rate": config.max_failure_rate,
        "max_requests": config.max_requests, "shard": [config.shard_index, config.shard_count],
        "settings": job.settings(),
    })


def request_for(job: Job, task: Task, attempt: int, config: AugmentConfig) -> GenRequest:
    """Attempt `attempt` of `task`: the same messages and schema, a seed derived from (seed, job, key, attempt)
    and the temperature raised by ``attempt * retry_temperature_step`` (so a retry is a different request)."""
    base = config.sampling_for(job.name)
    temperature = base.temperature if attempt == 0 else min(
        MAX_RETRY_TEMPERATURE, base.temperature + attempt * config.retry_temperature_step)
    sampling = Sampling(max_tokens=base.max_tokens, temperature=temperature, top_p=base.top_p,
                        seed=derive_seed(config.seed, job.name, task.key, str(attempt)))
    return GenRequest(key=task.key, messages=job.messages(task), json_schema=job.schema(task), sampling=sampling)


def _timed(stream: Iterator[tuple[int, list[GenResult]]],
           out: _Outcome) -> Iterator[tuple[int, list[GenResult]]]:
    """The items of `stream`; the time spent waiting for each (the generation) is added to ``out.send_s``."""
    while True:
        t0 = time.perf_counter()
        item = next(stream, None)
        out.send_s += time.perf_counter() - t0
        if item is None:
            return
        yield item


def _prefix_counters(backend: LLMBackend) -> tuple[int, int]:
    usage = backend.usage
    return usage.prefix_cache_queries, usage.prefix_cache_hits


def _run_attempts(job: Job, tasks: list[Task], backend: LLMBackend, cache: RequestCache,
                  config: AugmentConfig, progress: bool, ctx: PlanContext) -> _Outcome:
    out = _Outcome()
    pending = tasks
    loaded_before = getattr(backend, "loaded", True)
    token_ids: dict[str, bytes] = {}  # chat text -> packed ids: a retry's chat is not tokenized again
    for attempt in range(config.max_retries + 1):
        if not pending:
            break
        requests = [request_for(job, t, attempt, config) for t in pending]
        keys = [r.cache_key(backend.model_id, job.template_version) for r in requests]
        answers = cache.get_many(keys)
        cached = sum(1 for k in set(keys) if k in answers)  # distinct requests the cache answers
        out.cached += cached
        todo = [(r, k) for r, k in zip(requests, keys) if k not in answers]
        todo = list({k: (r, k) for r, k in todo}.values())  # identical requests are sent once
        # Common prefixes side by side (the same batches in every executor and on every rerun).
        ids = prompt_ids([r for r, _ in todo], ctx.tokenizer, token_ids)
        order = send_order([r for r, _ in todo], ids, [k for _, k in todo])
        todo = [todo[i] for i in order]
        if attempt == 0:
            out.plan = token_plan(job.name, backend.model_id, [r for r, _ in todo],
                                  None if ids is None else [ids[i] for i in order], batch_size=config.batch_size,
                                  tasks=len(pending), cached=cached, ctx=ctx,
                                  engine_loaded=loaded_before, cached_completion=cache.completion_stats())
            log.info("%s", plan_line(job.name, backend.model_id, out.plan))
        sent_before = (out.sent, out.new_prompt_tokens, out.new_completion_tokens)
        q0, h0 = _prefix_counters(backend)
        bar = tqdm(total=len(todo), desc=f"{job.name} attempt {attempt}", unit="req", disable=not progress,
                   leave=False)
        batches = [todo[start:start + config.batch_size] for start in range(0, len(todo), config.batch_size)]
        # One backend engine answers the batches in order; a pool of engines (executor "ray") answers them in
        # parallel and hands each back as it finishes. Either way each batch is stored the moment it arrives.
        for index, results in _timed(answer_batches(backend, [[r for r, _ in batch] for batch in batches]), out):
            batch = batches[index]
            if len(results) != len(batch):
                raise AugmentError(f"backend {backend.model_id} returned {len(results)} results for {len(batch)} "
                                   "requests; the backend breaks the order-preserving contract")
            cache.put([(k, res) for (_, k), res in zip(batch, results)])
            out.sent += len(batch)
            for (_, k), res in zip(batch, results):
                out.new_prompt_tokens += res.prompt_tokens
                out.new_completion_tokens += res.completion_tokens
                if res.error is None:
                    answers[k] = res
                else:
                    out.backend_errors += 1
                    answers.setdefault(k, res)
            bar.update(len(batch))
        bar.close()
        q1, h1 = _prefix_counters(backend)
        out.per_attempt.append({"attempt": attempt, "requests": out.sent - sent_before[0],
                                "prompt_tokens": out.new_prompt_tokens - sent_before[1],
                                "completion_tokens": out.new_completion_tokens - sent_before[2],
                                "prefix_queries": q1 - q0, "prefix_hits": h1 - h0})
        retry = []
        for task, key in zip(pending, keys):
            res = answers[key]
            if res.error is not None:
                verdict: dict[str, Any] | ParseFailure = ParseFailure(Reason.BACKEND_ERROR, res.error)
            else:
                out.responses[key] = {"cache_key": key, "key": task.key, "attempt": attempt, "text": res.text,
                                      "finish_reason": res.finish_reason, "prompt_tokens": res.prompt_tokens,
                                      "completion_tokens": res.completion_tokens}
                verdict = job.parse(task, res)
            if isinstance(verdict, ParseFailure):
                out.failures.append({"key": task.key, "entity": task.entity, "attempt": attempt,
                                     "reason": str(verdict.reason), "detail": verdict.detail,
                                     "raw": res.text, "cache_key": key})
                retry.append(task)
            else:
                out.records[task.entity] = {job.entity: task.entity, **verdict, "attempt": attempt,
                                            "cache_key": key}
        pending = retry
    if not loaded_before and getattr(backend, "loaded", False):
        out.startup_s = getattr(backend, "startup_s", 0.0)
    return out


#: USD per 1K tokens the paper's cost figures imply (OpenAI list prices in mid-2023, §4.1.1 / Table 7):
#: gpt-3.5-turbo-0613 (4K context) for pairs and attributes, gpt-3.5-turbo-16k for profiles.
PAPER_PRICES = {
    "pairs": {"model": "gpt-3.5-turbo-0613", "input": 0.0015, "output": 0.002},
    "attributes": {"model": "gpt-3.5-turbo-0613", "input": 0.0015, "output": 0.002},
    "profiles": {"model": "gpt-3.5-turbo-16k", "input": 0.003, "output": 0.004},
}
#: Table 7 costs (Netflix, USD) per strategy and the Netflix entity counts the jobs run over.
PAPER_NETFLIX = {"pairs": (8.26, 13187), "attributes": (1.96, 17366), "profiles": (10.92, 13187), "total": 21.14}


def cost_estimate(job: str, prompt_tokens: int, completion_tokens: int, entities: int) -> dict[str, Any]:
    """API cost of these tokens at the paper's prices, and that cost per entity scaled to Netflix's size.

    cost = prompt_tokens / 1000 * input_price + completion_tokens / 1000 * output_price. Token counts come from the
    local model's tokenizer, not OpenAI's, so this is an estimate of the order of magnitude."""
    price = PAPER_PRICES[job]
    cost = prompt_tokens / 1000 * price["input"] + completion_tokens / 1000 * price["output"]
    paper_cost, netflix_entities = PAPER_NETFLIX[job]
    per_entity = cost / entities if entities else 0.0
    return {"priced_as": price["model"], "usd_input_per_1k": price["input"], "usd_output_per_1k": price["output"],
            "usd_this_run": round(cost, 6), "usd_per_entity": round(per_entity, 8),
            "usd_at_netflix_scale": round(per_entity * netflix_entities, 4), "paper_usd_netflix": paper_cost}


def _summary(job: Job, model_id: str, config: AugmentConfig, counts: dict[str, Any], tokens: dict[str, int],
             cost: dict[str, Any], records: pl.DataFrame, failures: pl.DataFrame,
             token_plan_record: dict[str, Any]) -> str:
    lines = [
        f"# Augmentation job `{job.name}` ({job.artifact})", "",
        f"- model: `{model_id}` (alias `{config.model}`), template `{job.template_version}`",
        f"- sampling: {json.dumps(config.sampling_for(job.name).__dict__)}, seed {config.seed}, "
        f"max retries {config.max_retries}",
        f"- shard {config.shard_index}/{config.shard_count}"
        + (f", first {config.max_requests} entities only" if config.max_requests else ""),
        "", "## Counts", "",
        f"- entities planned: {counts['planned']}, skipped without a request: {counts['skipped']}",
        f"- valid records: {counts['valid']} of {counts['tasks']} asked "
        f"(valid rate {counts['valid_rate']:.2%}); valid on a retry: {counts['valid_after_retry']}",
        f"- failed attempts: {counts['failed_attempts']}, entities left without a record: {counts['failed']}",
        f"- requests: {counts['requests_total']} in total, {counts['requests_sent']} sent in this run, "
        f"{counts['requests_cached']} served from the cache",
        f"- tokens: {tokens['prompt']} prompt + {tokens['completion']} completion",
        "",
    ]
    lines += ["## Token plan vs measured (requests sent in this run)", ""]
    lines += comparison_lines(token_plan_record["planned"], token_plan_record["measured"]) + [""]
    if failures.height:
        lines += ["## Failure reasons (all attempts)", ""]
        lines += [f"- {r}: {n}" for r, n in Counter(failures["reason"].to_list()).most_common()]
        lines.append("")
    lines += ["## Generated values", ""] + job.describe(records) + [""]
    lines += [
        "## API cost avoided", "",
        f"At the paper's prices ({cost['priced_as']}: {cost['usd_input_per_1k']} USD per 1K prompt tokens, "
        f"{cost['usd_output_per_1k']} per 1K completion tokens) these requests would cost "
        f"{cost['usd_this_run']:.4f} USD; per entity that is {cost['usd_at_netflix_scale']:.2f} USD at Netflix "
        f"scale, against {cost['paper_usd_netflix']} USD reported for this strategy in the paper's Table 7 "
        f"(all three strategies: {PAPER_NETFLIX['total']} USD). Token counts come from the local tokenizer; "
        "the paper's figures also include ada-002 embedding calls.", "",
    ]
    return "\n".join(lines)


def _backend_error_quotes(failures: Sequence[dict[str, Any]], limit: int = 3) -> str:
    """``; backend errors: "HTTP 401 ...", "..."``: the first `limit` distinct errors the backend reported, in order,
    so that the cause (a refused key, a bad schema) is in the message and not only in failures.parquet."""
    distinct = list(dict.fromkeys(f["detail"] for f in failures if f["reason"] == str(Reason.BACKEND_ERROR)))
    if not distinct:
        return ""
    quoted = ", ".join(json.dumps(d if len(d) <= 300 else d[:297] + "...") for d in distinct[:limit])
    more = f" (and {len(distinct) - limit} more distinct)" if len(distinct) > limit else ""
    return f"; backend errors: {quoted}{more}"


def job_identity(job: Job, config: AugmentConfig, inputs: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(config hash, input digests) of `job`'s artifact under `config`: what `reusable` compares a finished
    artifact against (`run_job` to skip it, the Slurm generator to leave its shard out of the array)."""
    # Provenance: the content of the dataset and candidates artifacts read (their paths are in `inputs`), so that
    # records of a dataset rebuilt since (other items behind the same indices) are never reused.
    digests = {name: artifact_digest(folder) for name, folder in sorted(inputs.items())
               if folder and is_complete(folder)}
    return job_config_hash(job, config, config.model), digests


def run_job(job: Job, backend: LLMBackend, config: AugmentConfig, path: Path, cache_dir: Path, *,
            inputs: dict[str, Any], force: bool = False, progress: bool = True,
            plan: PlanContext | None = None) -> Path:
    """Run `job` and write its artifact at `path` (skipped when a complete one for the same config exists).

    `plan` gives the tokenizer, backend kind, prefix-cache block size and throughput log of the token plan
    (`llmrec_local.augment.plan`); without it the plan counts requests only and no throughput is recorded.

    Raises AugmentError when more than ``config.max_failure_rate`` of the asked entities end without a valid
    record; the staging folder keeps ``failures.parquet`` and the cache keeps every answer for the rerun."""
    chash, digests = job_identity(job, config, inputs)
    if reusable(path, STAGE, chash, force=force, inputs=digests):
        log.info("%s: complete artifact for this config at %s, skipping", job.name, path)
        return path
    planned, skipped = job.plan()
    tasks = select_shard(planned, config)
    skipped_here = [s for s in skipped if s.entity % config.shard_count == config.shard_index]
    if not tasks:
        raise AugmentError(f"job {job.name}: nothing to ask in shard {config.shard_index}/{config.shard_count} "
                           f"({len(skipped_here)} entities skipped, e.g. "
                           f"{skipped_here[0].reason if skipped_here else 'none'}); check the dataset and candidates")
    t_start = time.perf_counter()
    tag = f"shard-{config.shard_index}-of-{config.shard_count}"
    with ArtifactWriter(path, stage=STAGE, config_hash=chash, resume=True, inputs=digests) as w, \
            RequestCache(cache_dir, job.name, tag) as cache:
        ctx = plan if plan is not None else PlanContext()
        outcome = _run_attempts(job, tasks, backend, cache, config, progress, ctx)
        result = measured(outcome.per_attempt, generate_s=max(0.0, outcome.send_s - outcome.startup_s),
                          startup_s=outcome.startup_s, block_size=getattr(backend, "block_size", None))
        record_throughput(ctx, backend.model_id, job.name, result)
        token_plan_record = {"planned": outcome.plan, "measured": result}
        skip_rows = [{"key": s.key, "entity": s.entity, "attempt": -1, "reason": str(s.reason),
                      "detail": s.detail, "raw": "", "cache_key": None} for s in skipped_here]
        failures = pl.DataFrame(skip_rows + outcome.failures, schema=failure_schema()).sort(["entity", "attempt"])
        write_failures(w.dir, failures)
        n_failed = len(tasks) - len(outcome.records)
        rate = n_failed / len(tasks)
        if rate > config.max_failure_rate:
            top = Counter(f["reason"] for f in outcome.failures).most_common(3)
            raise AugmentError(
                f"job {job.name}: {n_failed} of {len(tasks)} entities ({rate:.1%}) have no valid answer after "
                f"{config.max_retries} retries, above max_failure_rate={config.max_failure_rate:.1%}; top reasons "
                f"{top}{_backend_error_quotes(outcome.failures)}. Inspect {failures_path(w.dir)}; fix the "
                "model/prompt/server or raise max_failure_rate or max_retries, then rerun (answers already received "
                "are cached and not requested again)"
            )
        records = job.frame([outcome.records[e] for e in sorted(outcome.records)])
        responses = pl.DataFrame(list(outcome.responses.values()), schema=response_schema()).sort("cache_key")
        write_records(w.dir, w.manifest, records, responses)

        tokens = {"prompt": int(responses["prompt_tokens"].sum()),
                  "completion": int(responses["completion_tokens"].sum())}
        wall = time.perf_counter() - t_start
        counts = {
            "planned": len(planned), "skipped": len(skipped_here), "tasks": len(tasks),
            "valid": records.height, "valid_rate": records.height / len(tasks), "failed": n_failed,
            "failed_attempts": len(outcome.failures),
            "valid_after_retry": int((records["attempt"] > 0).sum()) if records.height else 0,
            "requests_total": responses.height + outcome.backend_errors,
            "requests_sent": outcome.sent, "requests_cached": outcome.cached,
            "backend_errors": outcome.backend_errors,
        }
        usage = {
            "requests_sent": outcome.sent, "requests_cached": outcome.cached,
            "tokens_all_requests": tokens,
            "tokens_sent_this_run": {"prompt": outcome.new_prompt_tokens,
                                     "completion": outcome.new_completion_tokens},
            "generate_wall_s": round(outcome.send_s, 3), "job_wall_s": round(wall, 3),
            "requests_per_s": round(outcome.sent / outcome.send_s, 3) if outcome.send_s > 0 else None,
            "output_tokens_per_s": (round(outcome.new_completion_tokens / outcome.send_s, 3)
                                    if outcome.send_s > 0 else None),
            "backend_usage": backend.usage.as_dict(),
            "token_plan": token_plan_record,
        }
        write_usage(w.dir, usage)
        cost = cost_estimate(job.name, tokens["prompt"], tokens["completion"], len(tasks))
        write_summary(w.dir, _summary(job, backend.model_id, config, counts, tokens, cost, records, failures,
                                      token_plan_record))
        w.manifest.update({
            "job": job.name, "artifact": job.artifact, "entity": job.entity,
            "model": {"alias": config.model, "model_id": backend.model_id, "backend": config.backend},
            "executor": config.executor,
            "template_versions": {job.name: job.template_version},
            "sampling": config.sampling_for(job.name).__dict__, "seed": config.seed,
            "retries": {"max_retries": config.max_retries, "temperature_step": config.retry_temperature_step},
            "shard": {"index": config.shard_index, "count": config.shard_count},
            "settings": job.settings(), "inputs": inputs, "counts": counts, "tokens": tokens,
            "throughput": {k: usage[k] for k in ("requests_per_s", "output_tokens_per_s", "generate_wall_s")},
            "cost_estimate": cost, "cache": str(cache.path), "token_plan": token_plan_record,
        })
    log.info("%s: %d/%d valid (%d sent, %d cached) -> %s", job.name, records.height, len(tasks), outcome.sent,
             outcome.cached, path)
    return path
