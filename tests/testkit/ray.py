"""Helpers of the Ray executor tests: a local Ray runtime, and a backend factory that kills its actor once and logs
every answer (to count how often each request was answered).

The classes here are unpickled inside Ray actors, so they live in testkit (importable there: the runtime's
workers get the repository and tests/ on PYTHONPATH), not in a test module."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from llmrec_local.llm.base import GenRequest, GenResult, LLMBackend

ROOT = Path(__file__).resolve().parents[2]


def start_local_ray() -> Iterator[None]:
    """A local Ray runtime for one test session: 2 CPUs (the actors ask for fractions of them), no dashboard."""
    import ray

    path = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield
    finally:
        ray.shutdown()


class _LoggingBackend:
    """Answers with the wrapped backend; appends one line per answered request to `log` (O_APPEND, one write per
    batch). Before answering the batch holding `kill_key`, the first process to get there kills itself (SIGKILL)."""

    def __init__(self, inner: LLMBackend, log: Path, kill_key: str | None, marker: Path) -> None:
        self.inner, self.log, self.kill_key, self.marker = inner, log, kill_key, marker
        self.model_id = inner.model_id
        self.usage = inner.usage

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.kill_key is not None and any(r.key == self.kill_key for r in requests):
            try:
                self.marker.touch(exist_ok=False)  # only the first actor to get here dies
            except FileExistsError:
                pass
            else:
                self.marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        results = self.inner.generate(requests)
        lines = "".join(json.dumps([r.key, r.sampling.seed]) + "\n" for r in requests)
        with open(self.log, "a") as f:
            f.write(lines)
        return results

    def close(self) -> None:
        self.inner.close()


class LoggingFactory:
    """Picklable zero-argument backend factory for `PooledBackend`: `make()`'s backend wrapped in `_LoggingBackend`."""

    def __init__(self, make: Callable[[], LLMBackend], log: Path, *, kill_key: str | None = None,
                 marker: Path | None = None) -> None:
        self.make, self.log, self.kill_key = make, log, kill_key
        self.marker = marker if marker is not None else log.with_suffix(".killed")

    def __call__(self) -> LLMBackend:
        return _LoggingBackend(self.make(), self.log, self.kill_key, self.marker)


def answer_counts(log: Path) -> Counter[tuple[str, int]]:
    """How often each (request key, seed) was answered, from a `LoggingFactory` log."""
    return Counter(tuple(json.loads(line)) for line in log.read_text().splitlines())
