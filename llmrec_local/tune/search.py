"""The search engine: the one module that imports Optuna (house rule 9), lazily, inside `run_search`.

A seeded TPE sampler proposes settings, a median pruner stops trials whose validation curve falls below the median
of the earlier trials at the same epoch, and the study lives in an SQLite file, so a killed search resumes with its
finished trials. Reproducibility across interruptions: the sampler of the k-th counted trial is seeded with
``derive_seed(seed, "tune", k)`` and sees only finished trials, so a resumed search proposes what an uninterrupted
one would have (a trial killed while training is marked failed and proposed again).

The budget counts complete and pruned trials and trials whose settings failed to train (the objective raised one
of `failures`, e.g. a diverging learning rate); a trial interrupted by a kill does not count.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..seeding import derive_seed
from .config import Distribution

log = logging.getLogger(__name__)

STUDY_NAME = "tune"
#: Trial attribute marking a trial whose settings failed to train (it counts against the budget).
_FAILED_ATTR = "failed"
#: Trial attribute marking the base trial (the run's own settings, proposed first when asked for).
_BASE_ATTR = "base"

#: objective(params, report) -> validation value; report(value, epoch) raises the pruning signal when the trial
#: should stop (let it propagate).
Objective = Callable[[dict[str, Any], Callable[[float, int], None]], float]


@dataclass(frozen=True)
class SearchResult:
    """What a finished search found: every trial (rows as in `llmrec_local.artifacts.tune.write_tune_files`), the
    best complete trial, the counts per state and the parameter importance (None when it cannot be computed) with
    a note saying why, or what limits it."""

    trials: list[dict[str, Any]]
    best: dict[str, Any]
    counts: dict[str, int]
    importance: dict[str, float] | None
    importance_note: str | None
    new_trials: int


def _suggest(trial: Any, name: str, dist: Distribution) -> Any:
    if dist.type == "categorical":
        return trial.suggest_categorical(name, list(dist.choices))
    if dist.type == "int":
        return trial.suggest_int(name, int(dist.low), int(dist.high), step=dist.step or 1)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.type == "log_float")


def _counted(trial: Any) -> bool:
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and _FAILED_ATTR in trial.user_attrs)


def _row(trial: Any) -> dict[str, Any]:
    steps = trial.intermediate_values
    state = trial.state.name
    value = trial.value if state == "COMPLETE" else steps[max(steps)] if steps else None
    duration = trial.duration.total_seconds() if trial.duration is not None else 0.0
    return {"number": trial.number, "state": state, "value": value, "last_epoch": max(steps) if steps else 0,
            "duration_s": round(duration, 3), "params": dict(trial.params),
            **({"error": trial.user_attrs[_FAILED_ATTR]} if _FAILED_ATTR in trial.user_attrs else {})}


def run_search(storage: Path, space: Mapping[str, Distribution], objective: Objective, *, budget: int, seed: int,
               startup_trials: int, pruning: bool, prune_startup_trials: int, prune_warmup_epochs: int,
               failures: tuple[type[BaseException], ...] = (),
               base_params: Mapping[str, Any] | None = None) -> SearchResult:
    """Run trials until `budget` count (see the module docstring), maximising the objective's validation value.

    Args:
        storage: the SQLite file of the study (created, or resumed when it exists).
        space: dotted TrainConfig key -> distribution.
        objective: trains one proposal (see `Objective`).
        failures: exceptions that mean "these settings do not train" (recorded as a failed trial, counted).
        base_params: when given, the first trial trains these values (a None value: the key is not set, the base
            config keeps its own); it counts against the budget like any other trial.
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{Path(storage).resolve()}"
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=prune_startup_trials, n_warmup_steps=prune_warmup_epochs)
              if pruning else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=STUDY_NAME, storage=url, direction="maximize", load_if_exists=True)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        # Only one process drives a study: a running trial found now was killed with its process.
        log.info("trial %d was interrupted; it is marked failed and its settings are proposed again", stale.number)
        study.tell(stale.number, state=TrialState.FAIL)

    if base_params is not None and not any(
            _counted(t) and t.user_attrs.get(_BASE_ATTR) for t in study.get_trials(deepcopy=False)):
        # First (again, after a kill: the killed base trial was just marked failed, uncounted), so that a resumed
        # search proposes what an uninterrupted one would have.
        study.enqueue_trial({k: v for k, v in base_params.items() if v is not None}, user_attrs={_BASE_ATTR: True})

    left_unset = {k for k, v in (base_params or {}).items() if v is None}  # by the base trial only

    def wrapped(trial: optuna.Trial) -> float:
        unset = left_unset if trial.user_attrs.get(_BASE_ATTR) else set()
        params = {name: _suggest(trial, name, dist) for name, dist in space.items() if name not in unset}

        def report(value: float, epoch: int) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation {value:.4f} at epoch {epoch} is below the median")

        try:
            return objective(params, report)
        except failures as exc:
            trial.set_user_attr(_FAILED_ATTR, str(exc))
            raise

    new = 0
    while (done := sum(_counted(t) for t in study.get_trials(deepcopy=False))) < budget:
        sampler = optuna.samplers.TPESampler(seed=derive_seed(seed, "tune", str(done)), constant_liar=False,
                                             n_startup_trials=startup_trials)
        study = optuna.load_study(study_name=STUDY_NAME, storage=url, sampler=sampler, pruner=pruner)
        t0 = time.perf_counter()
        study.optimize(wrapped, n_trials=1, catch=failures)
        new += 1
        last = _row(study.get_trials(deepcopy=False)[-1])
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = max((t.value for t in complete), default=None)
        log.info("trial %d/%d %s: value %s at epoch %d (%.1f s) %s; best so far %s", done + 1, budget,
                 last["state"].lower(), "n/a" if last["value"] is None else f"{last['value']:.4f}",
                 last["last_epoch"], time.perf_counter() - t0, last["params"],
                 "n/a" if best is None else f"{best:.4f}")

    trials = [_row(t) for t in study.get_trials(deepcopy=False) if _counted(t)]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    counts = {state: sum(t["state"] == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL")}
    if not complete:
        return SearchResult(trials, {}, counts, None, "no trial completed", new)
    best = study.best_trial
    importance, note = None, None
    try:
        # Optuna's default evaluator (PED-ANOVA: which settings the top trials share) needs no scikit-learn; its
        # warnings (e.g. too few trials to tell the top ones apart) are the report's caveat.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            importance = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        note = "; ".join(sorted({str(w.message) for w in caught})) or None
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. too few complete trials, one value only
        note = f"not computed: {type(exc).__name__}: {exc}"
    return SearchResult(trials, {"params": dict(best.params), "value": float(best.value), "trial": best.number},
                        counts, importance, note, new)


__all__ = ["Objective", "SearchResult", "run_search"]
