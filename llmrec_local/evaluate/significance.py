"""Paired significance tests between two systems, over per-user metrics or over seeds (scipy.stats)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def paired_arrays(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Paired t-test and Wilcoxon signed-rank test of a vs b (same length, same pairing); two-sided.

    Returns ``{"n", "mean_a", "mean_b", "mean_diff", "t_stat", "t_p", "wilcoxon_stat", "wilcoxon_p"}``; a test that
    is undefined (fewer than 2 pairs, or all differences zero) reports None.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal shapes, got {x.shape} and {y.shape}")
    d = x - y
    out: dict[str, Any] = {"n": int(len(x)), "mean_a": float(x.mean()) if len(x) else None,
                           "mean_b": float(y.mean()) if len(y) else None,
                           "mean_diff": float(d.mean()) if len(d) else None,
                           "t_stat": None, "t_p": None, "wilcoxon_stat": None, "wilcoxon_p": None}
    if len(d) >= 2 and np.any(d != d[0]):
        t = stats.ttest_rel(x, y)
        out.update(t_stat=float(t.statistic), t_p=float(t.pvalue))
    if len(d) >= 2 and np.any(d != 0):
        w = stats.wilcoxon(x, y, zero_method="wilcox")
        out.update(wilcoxon_stat=float(w.statistic), wilcoxon_p=float(w.pvalue))
    return out


def paired_tests(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], metric: str) -> dict[str, Any]:
    """Per-user paired tests of `metric` between two per-user tables (columns ``user`` + metrics), joined on user."""
    for name, t in (("a", a), ("b", b)):
        if metric not in t:
            raise ValueError(f"metric {metric!r} not in per-user table {name} (has {sorted(t)})")
    common, ia, ib = np.intersect1d(a["user"], b["user"], return_indices=True)
    if len(common) != len(a["user"]) or len(common) != len(b["user"]):
        raise ValueError("the two runs were evaluated on different user sets; evaluate both on the same split")
    return {"metric": metric, "unit": "user", **paired_arrays(a[metric][ia], b[metric][ib])}


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values of one family of tests, in the input order; None (an undefined test) stays
    None and is not counted in the family.

    With the m defined p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted values are
    ``p~_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))``: the step-down multipliers m, m - 1, ..., 1, and the running
    maximum (the monotonicity clamp) so that a smaller raw p-value never gets a larger adjusted one. Rejecting
    where ``p~ < alpha`` controls the family-wise error rate at alpha under any dependence between the tests.
    """
    defined = [(p, i) for i, p in enumerate(p_values) if p is not None and not np.isnan(p)]
    out: list[float | None] = [None] * len(p_values)
    m, running = len(defined), 0.0
    for rank, (p, i) in enumerate(sorted(defined)):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = running
    return out
