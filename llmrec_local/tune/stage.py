"""The ``tune`` stage: a validation search over one run's settings, written as a tune artifact.

Each trial trains the base TrainConfig with proposed settings (`apply_params`) through the runner's
`llmrec_local.run.trials.train_trial` and is scored by its best validation value of ``select_metric``; the pruner
hears every evaluation of the trial through the trainer's ``on_evaluation`` hook. The test split is never
evaluated: the search requires the standard protocol (which selects on validation) and a validation split, and no
evaluation stage runs for a trial.

Identity: the artifact's config hash covers the budget, the space, the sampler and pruner settings, the base
config's hash, the seed and the dataset's config; its input digests the dataset's and side inputs' content. A
rerun for the same identity reuses the artifact (nothing is trained); a raised budget extends the published search
(its finished trials are kept); any other change is an error that names what changed (``force`` starts afresh).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts.base import ArtifactWriter, is_complete, read_manifest, reusable
from ..artifacts.dataset import load_dataset
from ..artifacts.tune import STAGE, read_best, scratch_dir, storage_path, write_tune_files
from ..config import to_dict
from ..errors import ArtifactError, ConfigError, DataError
from ..hashing import stable_hash
from ..run.trials import train_trial, trial_identity
from .config import TuneConfig, apply_params, base_values

if TYPE_CHECKING:
    from ..data.arrays import InteractionArrays
    from ..train.config import TrainConfig
    from ..train.side import SideInputs

log = logging.getLogger(__name__)


def search_identity(config: TuneConfig, base: "TrainConfig", run: str | None, dataset_hash: str,
                    side: "SideInputs | None" = None) -> dict[str, Any]:
    """What a search depends on (its config hash is the hash of this): the run's space, budget, sampler and
    pruner settings, the base config's hash (its seed included), the dataset's config and which side inputs."""
    trial = trial_identity(base, side)
    return {"trials": config.trials, "space": to_dict(config.space_for(run)),
            "startup_trials": config.startup_trials, "pruning": config.pruning,
            "prune_startup_trials": config.prune_startup_trials, "prune_warmup_epochs": config.prune_warmup_epochs,
            "base_config_hash": trial["base_config_hash"], "seed": base.seed, "dataset": dataset_hash,
            "side": sorted(trial["side"]) + (["dataset_features"] if side and side.use_dataset_features else []),
            **({"base_trial": True} if config.base_trial else {})}


def _changed(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Readable names of what differs between two search identities (space keys one by one)."""
    out = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if old == new:
            continue
        if key == "space" and isinstance(old, dict) and isinstance(new, dict):
            out += [f"space.{k} ({old.get(k, 'absent')} -> {new.get(k, 'absent')})"
                    for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        else:
            out.append(f"{key} ({old} -> {new})")
    return out


def _existing(out: Path, identity: dict[str, Any], config_hash: str, inputs: dict[str, str],
              force: bool) -> bool | Path:
    """True: a complete artifact of this search exists (skip). A path: a complete search of the same identity with
    a smaller budget, whose study this one extends. False: start (or resume) in the staging folder."""
    if force or not is_complete(out):
        return False
    manifest = read_manifest(out)
    if manifest.get("config_hash") == config_hash:
        return reusable(out, STAGE, config_hash, inputs=inputs)
    recorded = manifest.get("search") or {}
    changed = _changed(recorded, identity)
    if changed == [f"trials ({recorded.get('trials')} -> {identity['trials']})"] \
            and recorded["trials"] < identity["trials"] and manifest.get("input_digests") == inputs:
        log.info("%s: extending the finished search of %d trials to %d", out, recorded["trials"], identity["trials"])
        return out
    reason = "; ".join(changed) or "its inputs (dataset or side inputs content)"
    raise ArtifactError(f"{out} holds a tune artifact of another search: changed {reason}. A search is reused only "
                        "for the same space, base config, seed and data (raising tune.trials extends it): pass "
                        "--force to start a new search there, or choose another output folder")


def tune(config: TuneConfig, base: "TrainConfig", dataset: "Path | InteractionArrays", out: Path, *,
         run: str | None = None, side: "SideInputs | None" = None, force: bool = False) -> Path:
    """Search `config.space_for(run)` around `base` on validation and write the tune artifact at `out`.

    Args:
        config: budget, space and search settings.
        base: the run's TrainConfig (its seed seeds the sampler and every trial).
        dataset: a dataset artifact folder (or InteractionArrays, tests).
        out: the tune artifact folder (its staging folder holds the study while the search runs).
        run: the run name whose ``run_space`` adds dimensions (None: the shared space only).
        side: the run's side inputs (LLMRec).
        force: start a new search even when a complete artifact of another search is at `out`.
    Returns:
        `out`.
    """
    out = Path(out)
    space = config.space_for(run)
    if not space:
        raise ConfigError(f"tune: the search space of {run or 'this run'} is empty; declare tune.space (or "
                          f"tune.run_space.{run or '<run>'}) with at least one setting")
    if base.protocol != "standard":
        raise ConfigError(f"tune: {run or 'the run'} uses protocol {base.protocol!r}, which selects on test; tuning "
                          "selects on validation only: set protocol = 'standard'")
    arrays, dataset_path, info = load_dataset(dataset)
    if len(arrays.val) == 0:
        raise DataError(f"tune: dataset {info['path'] or '(in memory)'} has no validation split, and trials are "
                        "selected on validation only; prepare it with a validation split (val_ratio > 0)")
    first_stop = min(base.min_epochs, base.epochs)  # the first epoch early stopping (or the cap) can end a run at
    if config.pruning and config.prune_warmup_epochs < first_stop:
        log.warning("tune %s: median pruning may stop trials from epoch %d on, before the stopping rule's min_epochs "
                    "(%d): a trial still on a popularity plateau would be judged there; set tune.prune_warmup_epochs "
                    "= %d to wait as long as early stopping does", run or "", config.prune_warmup_epochs,
                    base.min_epochs, first_stop)
    first = base_values(base, space, run) if config.base_trial else None
    identity = search_identity(config, base, run, info["config_hash"], side)
    config_hash = stable_hash(identity)
    inputs = {"dataset": info["content_digest"], **trial_identity(base, side)["side"]}
    found = _existing(out, identity, config_hash, inputs, force)
    if found is True:
        log.info("tune %s is complete for this search (hash %s); skipping", out, config_hash)
        return out
    from .search import run_search

    base = replace(base, progress=False)
    metric = base.select_metric
    data = dataset_path if dataset_path is not None else arrays
    with ArtifactWriter(out, stage=STAGE, config_hash=config_hash, resume=True, inputs=inputs) as w:
        storage = storage_path(w.dir)
        if isinstance(found, Path) and not storage.exists():
            shutil.copyfile(storage_path(found), storage)
        scratch = scratch_dir(w.dir)

        def objective(params: dict[str, Any], report: Any) -> float:
            trial_config = apply_params(base, params, where=f"tune {run or ''}".strip())
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                metrics = train_trial(trial_config, data, scratch / "run", side=side,
                                      on_evaluation=lambda epoch, m: report(m[metric], epoch))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return metrics[metric]

        result = run_search(storage, space, objective, budget=config.trials, seed=base.seed,
                            startup_trials=config.startup_trials, pruning=config.pruning,
                            prune_startup_trials=config.prune_startup_trials,
                            prune_warmup_epochs=config.prune_warmup_epochs, failures=(DataError,),
                            base_params=first)
        if not result.best:
            raise DataError(f"tune {out}: none of the {config.trials} trials completed ({result.counts}); widen the "
                            "space (a learning rate that diverges?) or lower tune.prune_startup_trials")
        best = {**result.best, "metric": metric}
        summary = {"run": run, "metric": metric, "direction": "maximize", "budget": config.trials, "seed": base.seed,
                   "space": to_dict(space), "sampler": {"kind": "TPE", "startup_trials": config.startup_trials},
                   "base_trial": config.base_trial,
                   "pruner": {"kind": "median" if config.pruning else "none",
                              "startup_trials": config.prune_startup_trials,
                              "warmup_epochs": config.prune_warmup_epochs},
                   "counts": result.counts, "best": best, "importance": result.importance,
                   "importance_note": result.importance_note, "new_trials": result.new_trials}
        write_tune_files(w.dir, w.manifest, best=best, trials=result.trials, study=summary)
        w.manifest.update(search=identity, run=run, dataset=info, counts=result.counts, best=best,
                          base_config=to_dict(base))
    return out


def tuned_config(out: Path, config: TuneConfig, base: "TrainConfig", *, run: str | None = None) -> "TrainConfig":
    """`base` with the best settings of the tune artifact at `out` applied; ArtifactError when that artifact is
    missing or was searched for another base config or space (run the tune stage again)."""
    out = Path(out)
    if not is_complete(out):
        raise ArtifactError(f"run {run or ''} is tuned but {out} holds no finished search; run the tune stage first "
                            "(python -m llmrec_local.run RECIPE --from tune)")
    recorded = read_manifest(out).get("search") or {}
    current = {"space": to_dict(config.space_for(run)),
               "base_config_hash": trial_identity(base)["base_config_hash"], "seed": base.seed}
    changed = _changed({k: recorded.get(k) for k in current}, current)
    if changed:
        raise ArtifactError(f"the search at {out} is stale for run {run or ''}: changed {'; '.join(changed)}; rerun "
                            "the tune stage (python -m llmrec_local.run RECIPE --from tune)")
    return apply_params(base, read_best(out)["params"], where=f"tuned {run or ''}".strip())


__all__ = ["search_identity", "tune", "tuned_config"]
