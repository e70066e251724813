"""The augmentation jobs on the Ray executor: a local Ray runtime, the real transformers backend with the smoke
model in every actor. The artifacts equal those of a single-process run byte for byte (every file the manifest
lists, usage.json with its timings aside), also when an actor is killed in the middle of a job, and no request is
answered twice."""

from __future__ import annotations

import builtins
import functools
from pathlib import Path
from typing import Any

import pytest

from llmrec_local.artifacts.augmentation import USAGE_FILE
from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.augment import AugmentConfig, augment
from llmrec_local.augment.cache import RequestCache
from llmrec_local.augment.config import ProfilesSampling
from llmrec_local.augment.jobs import AttributesJob
from llmrec_local.executors.ray_executor import RaySettings
from llmrec_local.llm import factory
from llmrec_local.llm.pool import PooledBackend
from llmrec_local.llm.registry import resolve_model
from testkit.ray import LoggingFactory, answer_counts

pytestmark = pytest.mark.usefixtures("ray_runtime")

# Two requests per batch, so that four entities per job make two batches for the two engines; short values keep a
# random model's answers quick on two cores.
# No retries: each retry round would start the pool again (tens of seconds); failures are recorded either way.
CONFIG: dict[str, Any] = dict(model="smoke", backend="transformers", max_requests=4, batch_size=2,
                              history_max_chars=600, max_value_chars=16, max_list_items=2, max_retries=0,
                              max_failure_rate=1.0, profiles=ProfilesSampling(max_tokens=200))
POOL = RaySettings(num_engines=2)


def _digests(path: Path) -> dict[str, str]:
    """sha256 of every file of the artifact but usage.json (timings, throughput)."""
    return {name: f["sha256"] for name, f in read_manifest(path)["files"].items() if name != USAGE_FILE}


def _run(out: Path, dataset_path: Path, candidates_path: Path | None, models_dir: Path,
         **settings: Any) -> dict[str, Path]:
    config = AugmentConfig(**{**CONFIG, **settings})
    paths = augment(config, dataset_path, out, candidates=candidates_path, models_dir=models_dir, progress=False)
    return {job: paths[job] for job in config.jobs}


def test_attributes_job_on_ray_equals_the_single_process_run(dataset_path: Path, smoke_models_dir: Path,
                                                             tmp_path: Path) -> None:
    args = (dataset_path, None, smoke_models_dir)
    local = _run(tmp_path / "local", *args, jobs=("attributes",))
    driver_print = builtins.print
    pooled = _run(tmp_path / "ray", *args, jobs=("attributes",), executor="ray", ray=POOL)
    manifest = read_manifest(pooled["attributes"])
    assert manifest["counts"]["requests_sent"] == 4
    assert _digests(pooled["attributes"]) == _digests(local["attributes"])
    assert builtins.print is driver_print  # Ray Data's replacement of print does not outlive the pool


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [pytest.param(("attributes",), id="attributes"),
                                  pytest.param(("pairs", "attributes", "profiles"), marks=pytest.mark.extended,
                                               id="all-jobs")])
def test_jobs_on_ray_with_a_killed_actor(jobs: tuple[str, ...], dataset_path: Path, candidates_path: Path,
                                         smoke_models_dir: Path, tmp_path: Path) -> None:
    args = (dataset_path, candidates_path, smoke_models_dir)
    local = _run(tmp_path / "local", *args, jobs=jobs)
    # The actor that gets the batch holding the third attribute request kills itself (SIGKILL) before answering:
    # Ray restarts it and retries that batch; every answer is logged by the actor that produced it.
    config = AugmentConfig(**{**CONFIG, "jobs": jobs})
    victim = AttributesJob(Dataset.load(dataset_path), config).plan()[0][2].key
    log = tmp_path / "answers.log"
    make = LoggingFactory(functools.partial(factory.make_backend, "transformers", "smoke", models_dir=smoke_models_dir),
                          log, kill_key=victim)
    backend = PooledBackend(resolve_model("smoke", models_dir=smoke_models_dir).model_id, make, POOL)
    out = tmp_path / "ray"
    pooled = augment(config, dataset_path, out, candidates=candidates_path, models_dir=smoke_models_dir,
                     backend=backend, progress=False)
    assert make.marker.is_file(), "no actor was killed"
    counts = answer_counts(log)
    assert counts and max(counts.values()) == 1, "a request was answered twice"
    sent = sum(read_manifest(pooled[job])["counts"]["requests_sent"] for job in local)
    assert sent == len(counts)
    stored = 0
    for job in local:
        assert _digests(pooled[job]) == _digests(local[job]), job
        with RequestCache(out / "augment" / "cache", job, "shard-0-of-1") as cache:
            stored += cache.count()[0]
    assert stored == len(counts)  # every answer reached the driver's cache once
