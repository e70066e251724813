"""`PooledBackend`: an `LLMBackend` whose batches are answered by a pool of engines on Ray (one backend per actor:
one vLLM engine per GPU, or a transformers model per CPU slot), through `llmrec_local.executors.ray_executor`.

The driver keeps what makes answers reproducible: it builds the requests, cuts them into the batches a single
process would send and computes every cache key with `model_id` (resolved here, without loading the model). Each
actor builds its own backend with the same factory call, so an answer does not depend on which actor gave it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence

from ..executors.ray_executor import RaySession, RaySettings, map_batches
from .base import GenRequest, GenResult, LLMBackend, UsageStats


def _engine(make_backend: Callable[[], LLMBackend]) -> Callable[[Sequence[GenRequest]], list[GenResult]]:
    """Run in each actor: build the backend once; the worker is its `generate`."""
    return make_backend().generate


class PooledBackend:
    """`LLMBackend` over a Ray actor pool; `generate_batches` answers many batches at once (see `answer_batches`).

    Args:
        model_id: identity for cache keys and manifests (what the factory's backend reports).
        make_backend: picklable zero-argument factory run in every actor (e.g. a `functools.partial` of
            `llmrec_local.llm.factory.make_backend`); models_dir paths must exist on every node.
        settings: the pool (Ray address, engines, CPUs and GPUs per engine, restarts, retries).
    """

    def __init__(self, model_id: str, make_backend: Callable[[], LLMBackend], settings: RaySettings) -> None:
        self.model_id = model_id
        self.usage = UsageStats()
        self.settings = settings
        self._make_backend = make_backend
        self._session = RaySession(settings)

    def generate_batches(self, batches: Sequence[Sequence[GenRequest]]) -> Iterator[tuple[int, list[GenResult]]]:
        """``(batch index, results)`` of every batch as its answers arrive; the pool (and Ray, on first use) starts
        only when there is something to ask."""
        start = time.perf_counter()
        try:
            for index, results in map_batches(functools.partial(_engine, self._make_backend), batches,
                                              self.settings, session=self._session):
                self.usage.requests += len(results)
                self.usage.prompt_tokens += sum(r.prompt_tokens for r in results)
                self.usage.completion_tokens += sum(r.completion_tokens for r in results)
                yield index, results
        finally:
            self.usage.wall_s += time.perf_counter() - start

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        return [res for _, results in self.generate_batches([list(requests)]) for res in results]

    def close(self) -> None:
        self._session.close()
