"""Summaries of multi-seed studies: mean/std over seeds per system and paired tests against a baseline.

Used by the pipeline's report (`run.stage`) and the multi-seed command (`run.multiseed`); reads the evaluate
stage's per-user metrics and runs nothing. The tests of every other system against the baseline on one metric
form one family: each test's p-value also comes Holm-adjusted over that family (``t_p_holm``,
``wilcoxon_p_holm``), so that "significant" stays significant when many systems are compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate.significance import holm, paired_arrays

REPORT_METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@50", "ndcg@50", "precision@20")


def summarize_runs(runs: Mapping[str, Sequence[Path]], baseline: str,
                   metrics: Sequence[str] = REPORT_METRICS) -> dict[str, Any]:
    """Mean/std over seeds per system, and paired tests against `baseline` over seeds and over users."""
    from ..artifacts.evaluation import read_per_user

    tables = {name: [read_per_user(r) for r in rs] for name, rs in runs.items()}
    if baseline not in tables:
        raise ValueError(f"baseline {baseline!r} is not one of the systems {sorted(tables)}")
    # a cutoff above the catalogue size (recall@50 of 30 items) is not evaluated: summarise what every run has
    metrics = [m for m in metrics if all(m in t for ts in tables.values() for t in ts)]
    summary: dict[str, Any] = {"baseline": baseline, "systems": {}}
    for name, ts in tables.items():
        entry: dict[str, Any] = {"seeds": len(ts), "runs": [str(r) for r in runs[name]],
                                 "stopping": [_stopping(r) for r in runs[name]]}
        for m in metrics:
            per_seed = np.array([t[m].mean() for t in ts])
            entry[m] = {"mean": float(per_seed.mean()), "std": float(per_seed.std(ddof=1)) if len(ts) > 1 else 0.0,
                        "per_seed": per_seed.round(6).tolist()}
            if name != baseline:
                base = tables[baseline]
                base_seed = np.array([t[m].mean() for t in base])
                n = min(len(ts), len(base))
                users_mean = np.mean([t[m] for t in ts], axis=0)
                base_users = np.mean([t[m] for t in base], axis=0)
                if not all(np.array_equal(t["user"], base[0]["user"]) for t in [*ts, *base]):
                    raise ValueError("runs were evaluated on different user sets; use one dataset artifact")
                entry[m]["vs_baseline_over_seeds"] = paired_arrays(per_seed[:n], base_seed[:n])
                entry[m]["vs_baseline_over_users"] = paired_arrays(users_mean, base_users)
        summary["systems"][name] = entry
    _adjust_holm(summary["systems"], baseline, metrics)
    return summary


def _stopping(run: Path) -> dict[str, Any]:
    """How one run ended (train manifest): best and last epoch, why it stopped, whether it was still improving."""
    from ..artifacts.base import read_manifest

    manifest = read_manifest(run)
    stop = manifest.get("stopping") or {}
    return {"best_epoch": manifest.get("best_epoch"), "epochs_run": manifest.get("epochs_run"),
            "reason": stop.get("reason"), "still_improving": bool(stop.get("still_improving"))}


def _adjust_holm(systems: dict[str, Any], baseline: str, metrics: Sequence[str]) -> None:
    """Add ``<test>_p_holm`` beside every p-value: the family is, per metric, pairing (seeds, users) and test, the
    tests of all the other systems against the baseline."""
    others = [name for name in systems if name != baseline]
    for m in metrics:
        for over in ("vs_baseline_over_seeds", "vs_baseline_over_users"):
            for test in ("t_p", "wilcoxon_p"):
                tests = [systems[name][m][over] for name in others]
                for found, adjusted in zip(tests, holm([t[test] for t in tests])):
                    found[f"{test}_holm"] = adjusted
