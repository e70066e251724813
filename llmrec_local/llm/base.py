"""The batch-first LLM backend interface shared by every backend and every augmentation job.

Jobs build `GenRequest`s (chat messages, a JSON schema, sampling, a stable key), hand a whole batch to a backend,
and get `GenResult`s back in the same order. Parsing, domain checks, retries and caching live above the backends
(in `llmrec_local.augment`), so every backend only turns requests into text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..hashing import stable_hash


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of one request. ``temperature=0`` means greedy decoding."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class GenRequest:
    """One chat completion to run.

    Attributes:
        key: stable identity within a job (e.g. ``"pairs:user:42"``), for tracing and resume.
        messages: OpenAI-style chat messages; put the part shared by all requests first (prefix caching).
        json_schema: JSON schema the answer must satisfy (constrained decoding); None for free text.
        sampling: sampling parameters.
    """

    key: str
    messages: tuple[dict[str, str], ...]
    json_schema: dict[str, Any] | None = None
    sampling: Sampling = field(default_factory=Sampling)

    def cache_key(self, model_id: str, template_version: str) -> str:
        """Hash of everything that determines the answer: model, template version, sampling, messages, schema."""
        return stable_hash(
            {"model": model_id, "template": template_version, "sampling": self.sampling,
             "messages": list(self.messages), "schema": self.json_schema},
            length=32,
        )


@dataclass(frozen=True)
class GenResult:
    """The backend's answer to one request: `text` (raw completion), token counts, and `error` when the backend
    could not produce an answer for this request (the job records it as a failure and may retry)."""

    key: str
    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class UsageStats:
    """Accounting of a backend's work so far (summed over `generate` calls)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        return self.prefix_cache_hits / self.prefix_cache_queries if self.prefix_cache_queries else None

    def as_dict(self) -> dict[str, Any]:
        rate = lambda n: round(n / self.wall_s, 3) if self.wall_s > 0 else None  # noqa: E731
        return {
            "requests": self.requests, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "wall_s": round(self.wall_s, 3),
            "requests_per_s": rate(self.requests), "prompt_tokens_per_s": rate(self.prompt_tokens),
            "output_tokens_per_s": rate(self.completion_tokens),
            "prefix_cache_hit_rate": self.prefix_cache_hit_rate,
        }


@runtime_checkable
class LLMBackend(Protocol):
    """What every backend provides. `generate` preserves order: ``results[i]`` answers ``requests[i]``."""

    #: identity of the model for cache keys and manifests (alias + weights hash or folder name)
    model_id: str
    usage: UsageStats

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]: ...

    def close(self) -> None: ...


def answer_batches(backend: LLMBackend,
                   batches: Sequence[Sequence[GenRequest]]) -> Iterator[tuple[int, list[GenResult]]]:
    """``(batch index, results)`` for every batch, ``results[i]`` answering ``batches[index][i]``.

    A backend that spreads batches over several engines (a ``generate_batches`` method, e.g. `pool.PooledBackend`)
    yields them in completion order; any other backend answers them one after another, in order. Either way each
    batch reaches the backend exactly as given, so its answers are those of a single-process run."""
    spread = getattr(backend, "generate_batches", None)
    if spread is not None:
        yield from spread(batches)
        return
    for index, batch in enumerate(batches):
        yield index, backend.generate(batch)
