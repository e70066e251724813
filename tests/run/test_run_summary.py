"""The multi-seed summary: Holm-adjusted p-values over the systems tested against the baseline, and how each run
stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_local.evaluate.significance import holm, paired_arrays
from llmrec_local.run import summary as summary_module


@pytest.fixture
def study(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Path]]:
    """Three systems x 3 seeds of per-user metrics (8 users), read through stand-ins for the artifact readers."""
    rng = np.random.default_rng(0)
    base = rng.random(8) * 0.3
    shift = {"mf": 0.0, "lightgcn": 0.05, "sgl": 0.01}
    tables = {Path(f"{name}/seed{s}"): {"user": np.arange(8), "recall@20": base + shift[name] + 0.02 * rng.random(8),
                                        "ndcg@20": base / 2 + shift[name] * rng.random(8)}
              for name in shift for s in range(3)}
    manifests = {run: {"best_epoch": 40 + i, "epochs_run": 61 + i,
                       "stopping": {"reason": "patience", "still_improving": run.name == "seed2"}}
                 for i, run in enumerate(tables)}
    monkeypatch.setattr("llmrec_local.artifacts.evaluation.read_per_user", lambda run: tables[run])
    monkeypatch.setattr("llmrec_local.artifacts.base.read_manifest", lambda run: manifests[run])
    return {name: [Path(f"{name}/seed{s}") for s in range(3)] for name in shift}


def test_holm_over_the_systems_tested_against_the_baseline(study: dict[str, list[Path]]) -> None:
    out = summary_module.summarize_runs(study, "mf", metrics=("recall@20", "ndcg@20"))
    for metric in ("recall@20", "ndcg@20"):
        for over in ("vs_baseline_over_seeds", "vs_baseline_over_users"):
            tests = [out["systems"][name][metric][over] for name in ("lightgcn", "sgl")]
            for key in ("t_p", "wilcoxon_p"):
                assert [t[f"{key}_holm"] for t in tests] == pytest.approx(holm([t[key] for t in tests]))
    users = [out["systems"][n]["recall@20"]["vs_baseline_over_users"] for n in ("lightgcn", "sgl")]
    # a family of two: the smaller raw p doubles, the larger is kept (or clamped up to the first)
    low, high = sorted(users, key=lambda t: t["t_p"])
    assert low["t_p_holm"] == pytest.approx(min(1.0, 2 * low["t_p"]))
    assert high["t_p_holm"] == pytest.approx(max(low["t_p_holm"], high["t_p"]))
    raw = paired_arrays(np.mean([_recall(study, "lightgcn", s) for s in range(3)], axis=0),
                        np.mean([_recall(study, "mf", s) for s in range(3)], axis=0))
    assert users[0]["t_p"] == pytest.approx(raw["t_p"])
    assert "t_p_holm" not in out["systems"]["mf"]["recall@20"]


def _recall(study: dict[str, list[Path]], name: str, seed: int) -> np.ndarray:
    """Per-user recall@20 of one run, through the (patched) reader."""
    from llmrec_local.artifacts import evaluation

    return evaluation.read_per_user(study[name][seed])["recall@20"]


def test_each_run_reports_how_it_stopped(study: dict[str, list[Path]]) -> None:
    out = summary_module.summarize_runs(study, "mf", metrics=("recall@20",))
    stops = out["systems"]["lightgcn"]["stopping"]
    assert [s["epochs_run"] for s in stops] == [64, 65, 66] and [s["best_epoch"] for s in stops] == [43, 44, 45]
    assert [s["still_improving"] for s in stops] == [False, False, True]
    assert all(s["reason"] == "patience" for s in stops)
