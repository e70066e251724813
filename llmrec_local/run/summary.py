"""Summaries of multi-seed studies: mean/std over seeds per system and paired tests against a baseline.

Used by the pipeline's report (`run.stage`) and the multi-seed command (`run.multiseed`); reads the evaluate
stage's per-user metrics and runs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate.significance import paired_arrays

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
        entry: dict[str, Any] = {"seeds": len(ts), "runs": [str(r) for r in runs[name]]}
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
    return summary
