"""Recipes with a [tune] table: the runner searches each tuned run on validation, trains every seed with the best
settings (the run's config hash reflects them), compares the tuned runs through the same seed summary, refuses a
stale search and validates the table against the runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.tune import read_best
from llmrec_local.config import to_dict
from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.errors import ArtifactError, ConfigError
from llmrec_local.run.config import parse_recipe
from llmrec_local.run.stage import Layout, run_pipeline, select_stages
from llmrec_local.tune.config import apply_params


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("raw"), n_users=40, n_items=60, interactions_per_user=10,
                              seed=1, posters=False)


def _recipe(raw: Path, workdir: Path, low: float = 1e-3) -> dict[str, Any]:
    return {
        "recipe": {"name": "tuned", "workdir": str(workdir), "seeds": [0, 1], "baseline": "mf"},
        "prepare": {"source": str(raw), "format": "generic", "min_rating": None, "seed": 0},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "progress": False},
        "tune": {"trials": 2, "runs": ["lightgcn"], "startup_trials": 2,
                 "space": {"lr": {"type": "log_float", "low": low, "high": 0.05},
                           "model.dim": {"type": "categorical", "choices": [8, 16]}}},
        "runs": {"mf": {"model": {"name": "mf", "dim": 8}},
                 "lightgcn": {"model": {"name": "lightgcn", "dim": 4, "n_layers": 1}}},
    }


def _train_config(run: Path) -> dict[str, Any]:
    return json.loads((run / "config.json").read_text())["train"]


def test_tuned_runs_train_every_seed_with_the_best_settings(raw: Path, tmp_path: Path) -> None:
    recipe = parse_recipe(_recipe(raw, tmp_path / "w"))
    results = run_pipeline(recipe, progress=False, echo=lambda _: None)
    layout = Layout(tmp_path / "w")
    assert [s["stage"] for s in results["stages"]][:2] == ["prepare", "tune lightgcn"]
    assert len(results["tuning"]["lightgcn"]["trials"]) == 2 and "mf" not in results["tuning"]
    best = read_best(layout.tuned("lightgcn"))["params"]
    for seed in (0, 1):
        expected = apply_params(replace(recipe.run("lightgcn").train, seed=seed, progress=False), best)
        trained = _train_config(layout.run("lightgcn", seed))
        assert trained == to_dict(expected) and trained["model"]["dim"] == best["model.dim"] != 4
        assert _train_config(layout.run("mf", seed))["lr"] == 0.01  # untuned runs keep their config
    # Tuned runs go through the same seed summary and paired tests as any run.
    assert {c["run"] for c in results["comparisons"]} == {"lightgcn"}
    report = (layout.report / "report.md").read_text()
    assert "Validation tuning" in report and "lightgcn" in report

    # A rerun from train reuses the search and every run (nothing is trained again).
    again = run_pipeline(recipe, stages=select_stages("train", None), progress=False, echo=lambda _: None)
    assert all(s["skipped"] for s in again["stages"] if s["stage"].startswith("train"))
    hashes = {read_manifest(layout.run("lightgcn", s))["config_hash"] for s in (0, 1)}
    assert len(hashes) == 2

    # A changed space with a stale search: training refuses until the tune stage ran again.
    changed = parse_recipe(_recipe(raw, tmp_path / "w", low=1e-4))
    with pytest.raises(ArtifactError, match=r"stale .*space\.lr"):
        run_pipeline(changed, stages=select_stages("train", None), progress=False, echo=lambda _: None)


def test_tune_table_is_checked_against_the_runs(raw: Path, tmp_path: Path) -> None:
    data = _recipe(raw, tmp_path)
    with pytest.raises(ConfigError, match=r"tune.runs: \['lightgnc'\] are not runs.*did you mean 'lightgcn'"):
        parse_recipe({**data, "tune": {**data["tune"], "runs": ["lightgnc"]}})
    with pytest.raises(ConfigError, match="selects on test"):
        parse_recipe(data, ["runs.lightgcn.protocol=\"paper\""])
    with pytest.raises(ConfigError, match="not tuned"):
        parse_recipe(data, ["tune.run_space.mf.lr={type=\"float\", low=0.001, high=0.01}"])
    recipe = parse_recipe(data, ["tune.runs=[]"])
    assert [r.name for r in recipe.tuned_runs] == ["mf", "lightgcn"]
    assert "[tune.space.lr]" in __import__("llmrec_local.run.config", fromlist=["x"]).resolved_toml(recipe)
