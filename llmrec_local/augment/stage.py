"""`augment()`: the stage's public entry point (used by the CLI and the pipeline runner).

Output layout under `out`:

    candidates/                       top-K candidates (stage "candidates"), when built or imported here
    base_run/                         quick LightGCN run for the candidates, when neither was given
    augment/pairs/                    records.parquet, failures.parquet, responses.parquet, usage.json,
    augment/item_attributes/          summary.md, manifest.json, _COMPLETE (stage "augment")
    augment/user_profiles/
    augment/<artifact>.shard-i-of-N/  the same, for one shard of a sharded run (merged by `shard.merge`)
    augment/cache/                    request cache (SQLite, one file per job and shard), shared by all runs
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..artifacts.base import is_complete
from ..candidates import stage as cand
from ..errors import ConfigError
from ..llm.base import LLMBackend
from .config import AugmentConfig
from .jobs import AttributesJob, DatasetLike, PairsJob, ProfilesJob
from .runner import LazyBackend, run_job

log = logging.getLogger(__name__)

ARTIFACTS = {"pairs": "pairs", "attributes": "item_attributes", "profiles": "user_profiles"}


def artifact_path(out: Path, job: str, config: AugmentConfig) -> Path:
    """Where `job`'s artifact goes: ``<out>/augment/<artifact>`` (``.shard-i-of-N`` suffix when sharded)."""
    name = ARTIFACTS[job]
    if config.shard_count > 1:
        name = f"{name}.shard-{config.shard_index}-of-{config.shard_count}"
    return Path(out) / "augment" / name


def load_dataset(dataset: DatasetLike | str | Path) -> DatasetLike:
    """A `Dataset` from a path (or the object itself)."""
    if isinstance(dataset, (str, Path)):
        from ..artifacts.dataset import Dataset

        return Dataset.load(dataset)
    return dataset


def make_backend(config: AugmentConfig, *, models_dir: str | Path | None = None, base_url: str | None = None,
                 options: Mapping[str, Any] | None = None) -> LLMBackend:
    """The configured backend. Local engines (vllm, transformers) are loaded on first use, so a rerun whose every
    request is cached never loads the model; their identity for cache keys comes from the model registry
    (alias + fingerprint of the folder). An OpenAI-compatible server is connected to at once."""
    from ..llm import factory

    opts = dict(options or {})
    build = lambda: factory.make_backend(config.backend, config.model, models_dir=models_dir,  # noqa: E731
                                         base_url=base_url, **opts)
    if config.backend == "openai" or (config.backend == "auto" and base_url):
        return build()
    from ..llm.registry import resolve_model

    resolved = resolve_model(config.model, models_dir=models_dir)
    return LazyBackend(resolved.model_id, build)


def resolve_candidates(dataset: DatasetLike, out: Path, config: AugmentConfig, *,
                       candidates: str | Path | None, base_run: str | Path | None,
                       force: bool = False) -> Path:
    """The candidates artifact the pair job reads: `candidates` if it is one; else imported from the file given,
    or computed from `base_run`'s embeddings (train items masked), into ``<out>/candidates``; else an existing
    ``<out>/candidates``; else from a quick LightGCN trained here (`train_base_run`)."""
    target = Path(out) / "candidates"
    if candidates is not None and Path(candidates).is_dir() and is_complete(candidates):
        cand.require_stage(candidates, cand.STAGE)
        return Path(candidates)
    if candidates is not None:
        frame, inputs = cand.from_file(candidates, dataset, config.k)
        return cand.write_candidates(frame, target, k=config.k, source="import", masked_train=False,
                                     inputs=inputs, force=force)
    if base_run is not None:
        frame, inputs = cand.from_run(base_run, dataset, config.k)
        return cand.write_candidates(frame, target, k=config.k, source="base_run", masked_train=True,
                                     inputs=inputs, force=force)
    if is_complete(target):
        return target
    run = train_base_run(dataset, out, config)
    frame, inputs = cand.from_run(run, dataset, config.k)
    return cand.write_candidates(frame, target, k=config.k, source="base_run", masked_train=True, inputs=inputs,
                                 force=force)


def train_base_run(dataset: DatasetLike, out: Path, config: AugmentConfig) -> Path:
    """Train a quick LightGCN (``base_epochs`` epochs, default settings otherwise) into ``<out>/base_run`` through
    the training stage; its embeddings give the candidates."""
    path = getattr(dataset, "path", None)
    if path is None:
        raise ConfigError("the pairs job needs candidates: pass --base-run runs/<id> or --candidates FILE|DIR "
                          "(a dataset object without a folder cannot be trained on here)")
    from ..train import ModelConfig, TrainConfig, train

    log.info("no candidates or base run given: training a LightGCN for %d epochs into %s/base_run",
             config.base_epochs, out)
    train_config = TrainConfig(model=ModelConfig(name="lightgcn"), epochs=config.base_epochs, seed=config.seed)
    return train(train_config, Path(path), Path(out) / "base_run")


def augment(config: AugmentConfig, dataset: DatasetLike | str | Path, out: str | Path, *,
            backend: LLMBackend | None = None, candidates: str | Path | None = None,
            base_run: str | Path | None = None, models_dir: str | Path | None = None,
            base_url: str | None = None, backend_options: Mapping[str, Any] | None = None,
            force: bool = False, progress: bool = True) -> dict[str, Path]:
    """Run the configured jobs; returns ``{job: artifact path}`` (plus ``"candidates"`` when the pairs job ran).

    Jobs whose complete artifact for the same config exists are skipped; an interrupted job resumes from its
    request cache. `backend` overrides the one built from the config (tests, notebooks, a shared engine); the
    backend is closed here only when it was built here.
    """
    out = Path(out)
    ds = load_dataset(dataset)
    dataset_path = str(getattr(ds, "path", ""))
    cache_dir = out / "augment" / "cache"
    # Resolve the model before any other work (candidates may train a base model): a missing model folder must
    # fail in seconds, not after minutes of training.
    own = backend is None
    llm = backend if backend is not None else make_backend(config, models_dir=models_dir, base_url=base_url,
                                                           options=backend_options)
    try:
        paths: dict[str, Path] = {}
        jobs = []
        for name in config.jobs:
            if name == "pairs":
                cpath = resolve_candidates(ds, out, config, candidates=candidates, base_run=base_run, force=force)
                frame, fingerprint = cand.load_candidates(cpath)
                paths["candidates"] = cpath
                jobs.append((PairsJob(ds, frame, config, fingerprint), {"dataset": dataset_path,
                                                                         "candidates": str(cpath)}))
            elif name == "attributes":
                jobs.append((AttributesJob(ds, config), {"dataset": dataset_path}))
            else:
                jobs.append((ProfilesJob(ds, config), {"dataset": dataset_path}))
        for job, inputs in jobs:
            paths[job.name] = run_job(job, llm, config, artifact_path(out, job.name, config), cache_dir,
                                      inputs=inputs, force=force, progress=progress)
    finally:
        if own:
            llm.close()
    return paths
