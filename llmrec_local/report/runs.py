"""Runs of a study grouped by system: per-seed metrics to mean ± std, and the values of training curves."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def summarise_runs(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group runs by name and give mean and sample std of every metric over seeds.

    Returns one row per run name, in first-seen order: {"name", "seeds": [...], "<metric>": (mean, std)}.
    std is 0 for a single seed.
    """
    order: list[str] = []
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        if run["name"] not in grouped:
            order.append(run["name"])
        grouped.setdefault(run["name"], []).append(run)
    rows = []
    for name in order:
        group = grouped[name]
        row: dict[str, Any] = {"name": name, "seeds": [r["seed"] for r in group], "model": group[0].get("model"),
                               "side": group[0].get("side"), "ablation": group[0].get("ablation"),
                               "selection": group[0].get("selection")}
        for metric in group[0]["metrics"]:
            values = [float(r["metrics"][metric]) for r in group]
            row[metric] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        rows.append(row)
    return rows


def curve_value(point: Mapping[str, Any], key: str) -> float | None:
    """`key` of one train_log entry: top level (loss) or inside its ``val`` metrics (evaluated epochs only)."""
    if key in point:
        return point[key]
    return (point.get("val") or {}).get(key)
