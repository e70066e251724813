"""`augment()`: the stage's public entry point (used by the CLI and the pipeline runner).

The pairs job reads a candidates artifact (stage "candidates", `llmrec_local.artifacts.candidates`) made
beforehand: by the pipeline runner, the candidates command, or the augment command line (through the runner).

Output layout under `out`:

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

from ..artifacts.candidates import candidates_k, load_candidates
from ..errors import BackendError, ConfigError, ModelNotFoundError
from ..llm.base import LLMBackend
from ..llm.tokens import PromptCounter, load_prompt_tokenizer, vllm_block_size
from .config import AugmentConfig
from .jobs import AttributesJob, DatasetLike, PairsJob, ProfilesJob
from .plan import PlanContext, default_log_path
from .runner import Job, LazyBackend, run_job

log = logging.getLogger(__name__)

ARTIFACTS = {"pairs": "pairs", "attributes": "item_attributes", "profiles": "user_profiles"}
NO_CANDIDATES = ("the pairs job needs candidates: pass a candidates artifact (python -m llmrec_local.candidates, or "
                 "the pipeline's <workdir>/candidates)")


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
    (alias + fingerprint of the folder). An OpenAI-compatible server is connected to at once, with the config's
    transport settings (API key variable, timeout, retries, concurrency; `options` override them). With
    ``executor = "ray"`` the backend is a pool of such engines on Ray (`llmrec_local.llm.pool.PooledBackend`),
    started on the first request that is not cached."""
    import functools

    from ..llm import factory

    remote = config.backend == "openai" or (config.backend == "auto" and base_url)
    if remote and config.executor == "ray":
        raise ConfigError("executor 'ray' runs local engines (backend vllm or transformers), not an OpenAI-compatible "
                          "server (which batches requests itself): drop --base-url or use executor 'local'")
    opts = {**(config.http_options() if remote else {}), **(options or {})}
    # An absolute models folder: the Ray executor's actors build the same backend in another working directory.
    build = functools.partial(factory.make_backend, config.backend, config.model,
                              models_dir=None if models_dir is None else Path(models_dir).absolute(),
                              base_url=base_url, **opts)
    if remote:
        return build()
    from ..llm.registry import resolve_model

    resolved = resolve_model(config.model, models_dir=models_dir)
    if config.executor == "ray":
        from ..executors.ray_executor import check_executor
        from ..llm.pool import PooledBackend

        check_executor(config.executor)
        return PooledBackend(resolved.model_id, build, config.ray)
    return LazyBackend(resolved.model_id, build)


def build_jobs(config: AugmentConfig, ds: DatasetLike, candidates: str | Path | None,
               tokenizer: PromptCounter | None = None) -> list[tuple[Job, dict[str, str]]]:
    """The configured jobs in run order, each with the artifacts it reads (``{"dataset": path, ...}``, the
    `inputs` of `run_job`). Shared by `augment` and the Slurm generator, which must compute the same artifact
    identities as the runs it plans (identities need no tokenizer; planning the tasks under a token budget does)."""
    dataset_path = str(getattr(ds, "path", ""))
    jobs: list[tuple[Job, dict[str, str]]] = []
    for name in config.jobs:
        if name == "pairs":
            if candidates is None:
                raise ConfigError(NO_CANDIDATES)
            cpath = Path(candidates)
            frame, fingerprint = load_candidates(cpath)
            jobs.append((PairsJob(ds, frame, config, fingerprint, candidates_k(cpath), tokenizer),
                         {"dataset": dataset_path, "candidates": str(cpath)}))
        elif name == "attributes":
            jobs.append((AttributesJob(ds, config), {"dataset": dataset_path}))
        else:
            jobs.append((ProfilesJob(ds, config, tokenizer), {"dataset": dataset_path}))
    return jobs


def plan_context(config: AugmentConfig, *, backend: LLMBackend | None, models_dir: str | Path | None,
                 base_url: str | None, options: Mapping[str, Any] | None) -> PlanContext:
    """The token plan's context (`llmrec_local.augment.plan`): the model's tokenizer when its folder is on disk, the
    backend kind, its prefix-cache block size, and the throughput log of this host.

    Without a local tokenizer (a model served elsewhere, or a stand-in backend) the plan counts requests only; a
    token budget (``history_max_tokens``) then fails with the registry's message saying where it looked."""
    from ..llm.factory import resolve_kind

    try:
        tokenizer: PromptCounter | None = load_prompt_tokenizer(config.model, models_dir)
    except (ModelNotFoundError, BackendError) as exc:
        if config.history_max_tokens is not None:
            raise
        log.info("token plan without prompt-token counts: no tokenizer for %r (%s)", config.model, exc)
        tokenizer = None
    if backend is not None and not isinstance(backend, LazyBackend):
        kind = {"VLLMBackend": "vllm", "TransformersBackend": "transformers", "OpenAIBackend": "openai",
                "PooledBackend": "pool"}.get(type(backend).__name__, type(backend).__name__)
        block = getattr(backend, "block_size", None)
    else:
        remote = config.backend == "openai" or (config.backend == "auto" and base_url)
        kind = "openai" if remote else resolve_kind(config.backend)
        engine_kwargs = dict((options or {}).get("engine_kwargs") or {})
        block = vllm_block_size(engine_kwargs) if kind == "vllm" else None
    if config.executor == "ray":
        kind = f"{kind}+ray{config.ray.num_engines}"
    return PlanContext(tokenizer=tokenizer, backend=kind, block_size=block, log_path=default_log_path())


def augment(config: AugmentConfig, dataset: DatasetLike | str | Path, out: str | Path, *,
            backend: LLMBackend | None = None, candidates: str | Path | None = None,
            models_dir: str | Path | None = None,
            base_url: str | None = None, backend_options: Mapping[str, Any] | None = None,
            force: bool = False, progress: bool = True) -> dict[str, Path]:
    """Run the configured jobs; returns ``{job: artifact path}`` (plus ``"candidates"`` when the pairs job ran).

    `candidates` is the candidates artifact the pairs job reads (required when it runs).
    Jobs whose complete artifact for the same config exists are skipped; an interrupted job resumes from its
    request cache. `backend` overrides the one built from the config (tests, notebooks, a shared engine); the
    backend is closed here only when it was built here.
    """
    out = Path(out)
    ds = load_dataset(dataset)
    cache_dir = out / "augment" / "cache"
    if "pairs" in config.jobs and candidates is None:
        raise ConfigError(NO_CANDIDATES)
    own = backend is None
    llm = backend if backend is not None else make_backend(config, models_dir=models_dir, base_url=base_url,
                                                           options=backend_options)
    ctx = plan_context(config, backend=backend, models_dir=models_dir, base_url=base_url, options=backend_options)
    try:
        paths: dict[str, Path] = {"candidates": Path(candidates)} if "pairs" in config.jobs else {}
        for job, inputs in build_jobs(config, ds, candidates, ctx.tokenizer):
            paths[job.name] = run_job(job, llm, config, artifact_path(out, job.name, config), cache_dir,
                                      inputs=inputs, force=force, progress=progress, plan=ctx)
    finally:
        if own:
            llm.close()
    return paths
