"""Ray Data executor: a stage's batches as a Ray Dataset, answered by a pool of actors that each hold one worker
(an LLM engine, a text or image encoder). The only module that imports ray (lazily, inside the functions), so
``import llmrec_local`` and every entry point start without it (install the ``ray`` extra to use it).

The caller gives

* ``batches``: the exact batches a single process would hand to its worker, one after another. They are not
  re-cut here because an answer can depend on its batch partners (the transformers backend seeds and samples per
  micro-batch; an encoder's float results depend on the padding of the forward pass): one batch is one row of the
  Dataset and one call of a worker, so the outputs are those of the single-process run, bit for bit;
* ``make_worker``: a picklable zero-argument callable, run once in each actor (and again in a restarted one), that
  returns the worker: a callable mapping one batch to its list of outputs.

`map_batches` yields ``(batch index, outputs)`` in completion order, as each batch's answers reach the driver, so
the caller can store them durably at once (the LLM request cache does): a killed driver loses at most the batches
in flight. A killed actor is restarted by Ray (``max_restarts``) and its unfinished batch is retried on the pool
(``max_task_retries``); finished batches are never run again.

Resources: each actor asks for ``num_cpus`` (fractional by default: on a small machine an actor pool that asks
for whole CPUs can starve Ray Data's own tasks and deadlock) and ``num_gpus`` (1 per vLLM engine on a GPU cluster).
Ray gives an actor ``OMP_NUM_THREADS = max(1, floor(num_cpus))`` threads unless the variable is set; set
``num_cpus`` to the cores one CPU engine should use.
"""

from __future__ import annotations

import builtins
import logging
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..errors import ConfigError

log = logging.getLogger(__name__)

Worker = Callable[[Any], Sequence[Any]]

#: ``executor`` of the stage configs: "local" (this process, the default) or "ray".
ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True)
class RaySettings:
    """Where and with what the actor pool runs (the ``[<stage>.ray]`` table of a recipe).

    Attributes:
        address: Ray cluster to join (``auto``: the one this machine belongs to, ``ray://host:10001``, ...); None:
            the runtime already initialised in this process, else a local one started here and stopped after.
        num_engines: actors in the pool, each holding one engine (one vLLM engine per GPU) or encoder; a run with
            fewer batches starts only as many.
        num_cpus: CPUs each actor asks for (fractional is fine).
        num_gpus: GPUs each actor asks for (1 per vLLM engine on GPUs; 0 on CPU machines).
        max_restarts: restarts of an actor that died (killed, out of memory, node lost).
        max_task_retries: retries of a batch whose actor died while answering it.
    These settings change where answers are computed, never what they are: no artifact's identity depends on them.
    """

    address: str | None = None
    num_engines: int = 1
    num_cpus: float = 0.5
    num_gpus: float = 0.0
    max_restarts: int = 3
    max_task_retries: int = 3

    def __post_init__(self) -> None:
        if self.num_engines < 1:
            raise ValueError(f"num_engines must be >= 1, got {self.num_engines}")
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise ValueError(f"num_cpus must be > 0 and num_gpus >= 0, got {self.num_cpus} and {self.num_gpus}")
        if self.max_restarts < -1 or self.max_task_retries < -1:
            raise ValueError("max_restarts and max_task_retries must be >= 0 (or -1: unlimited)")


def with_ray_flags(table: dict[str, Any], address: str | None, num_engines: int | None) -> dict[str, Any]:
    """`table` (a stage's recipe table) with the command line's ``--ray-address`` / ``--num-engines`` merged into
    its ``ray`` sub-table (flags that were not given leave the recipe's values)."""
    flags = {k: v for k, v in (("address", address), ("num_engines", num_engines)) if v is not None}
    return {**table, "ray": {**table.get("ray", {}), **flags}} if flags else table


def check_executor(executor: str) -> None:
    """ConfigError unless `executor` is known and, for "ray", Ray is installed."""
    import importlib.util

    if executor not in get_args(ExecutorKind):
        raise ConfigError(f"executor {executor!r} is not one of {list(get_args(ExecutorKind))}")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("executor 'ray' needs Ray Data: pip install 'llmrec_local[ray]' (or choose executor "
                          "'local')")


class _BatchActor:
    """The callable class of `map_batches`: one worker per actor, one batch per call (rows carry pickled batches,
    because requests and their JSON schemas are nested Python values, not columns)."""

    def __init__(self, make_worker: Callable[[], Worker]) -> None:
        self.worker = make_worker()

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        outputs = [pickle.dumps(list(self.worker(pickle.loads(payload)))) for payload in rows["payload"]]
        return {"index": np.asarray(rows["index"]), "payload": np.array(outputs, dtype=object)}


class RaySession:
    """The Ray runtime of a run: joined or started on first use, stopped by `close` only when started here."""

    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings
        self._started = False

    def ensure(self) -> None:
        import ray

        if ray.is_initialized():
            return
        # Only the worker environment travels: actors import llmrec_local from the same installation.
        ray.init(address=self.settings.address, include_dashboard=False, log_to_driver=True,
                 configure_logging=False)
        self._started = True
        log.info("ray: %s", ray.cluster_resources())

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def map_batches(make_worker: Callable[[], Worker], batches: Sequence[Any], settings: RaySettings, *,
                session: RaySession | None = None, progress: bool = False) -> Iterator[tuple[int, list[Any]]]:
    """Answer every batch on a pool of ``min(num_engines, len(batches))`` actors; yields ``(index, outputs)`` as
    each batch's outputs arrive (completion order), ``outputs[i]`` for ``batches[index][i]``."""
    if not batches:
        return
    import numpy as np
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    own = session is None
    session = session or RaySession(settings)
    # Ray Data replaces builtins.print in the driver for good (its progress-safe print); the caller's process keeps
    # its own print once the pool is done.
    driver_print = builtins.print
    session.ensure()
    try:
        context = DataContext.get_current()
        context.enable_progress_bars = progress
        context.execution_options.preserve_order = False  # hand back each batch as soon as it is answered
        rows = [{"index": i, "payload": pickle.dumps(batch)} for i, batch in enumerate(batches)]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        with warnings.catch_warnings():
            # Ray 2.60 takes max_restarts / max_task_retries only as plain remote arguments, which it announces it
            # will rename; they are the fault tolerance this executor relies on, so they are passed regardless.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            answered = dataset.map_batches(
                _BatchActor, fn_constructor_kwargs={"make_worker": make_worker}, batch_size=1,
                compute=ActorPoolStrategy(size=min(settings.num_engines, len(batches))),
                num_cpus=settings.num_cpus, num_gpus=settings.num_gpus or None,
                max_restarts=settings.max_restarts, max_task_retries=settings.max_task_retries)
        for block in answered.iter_batches(batch_size=None, batch_format="numpy"):
            for index, payload in zip(np.asarray(block["index"]).tolist(), block["payload"]):
                yield int(index), pickle.loads(payload)
    finally:
        builtins.print = driver_print
        if own:
            session.close()
