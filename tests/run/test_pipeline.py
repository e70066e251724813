"""The recipe runner end to end on a synthetic dataset: every stage, skip-on-rerun, identical metrics on a rerun
in a fresh workdir, stage selection, and recipe validation.

The LLM here is a scripted FakeBackend (this tests the runner's logic); the real vLLM path runs in
tests/llm and tests/augment, and end to end in the quickstart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from testkit.fakes import FakeBackend

from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.errors import ArtifactError, ConfigError
from llmrec_local.llm.base import GenRequest
from llmrec_local.run.config import load_recipe, parse_recipe
from llmrec_local.run.stage import run_pipeline, select_stages


def example_from_schema(schema: dict[str, Any]) -> Any:
    """The first valid value of a JSON schema (first alternative, first enum value, empty lists)."""
    if "anyOf" in schema:
        return example_from_schema(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: example_from_schema(v) for k, v in schema["properties"].items()}
    if kind == "array":
        return []
    return "unknown" if kind == "string" else 0


def _answer(req: GenRequest) -> dict[str, Any]:
    assert req.json_schema is not None
    return example_from_schema(req.json_schema)


def _recipe(raw: Path, workdir: Path) -> dict[str, Any]:
    return {
        "recipe": {"name": "synthetic", "workdir": str(workdir), "seeds": [0, 1], "baseline": "lightgcn"},
        "prepare": {"source": str(raw), "format": "generic", "min_rating": None, "seed": 0},
        "candidates": {"k": 5, "epochs": 3, "progress": False, "model": {"name": "lightgcn", "dim": 16}},
        "augment": {"model": "fake-model", "jobs": ["pairs", "attributes", "profiles"]},
        "embed": {"sources": ["item_text", "item_attributes", "user_profiles"], "device": "cpu"},
        "train": {"epochs": 4, "eval_every": 2, "batch_size": 32, "lr": 0.01, "progress": False},
        "runs": {
            "lightgcn": {"model": {"name": "lightgcn", "dim": 16, "n_layers": 2}},
            "llmrec": {"side": ["item_text", "item_attributes", "user_profiles", "pairs"],
                       "model": {"name": "llmrec", "dim": 16}},
        },
    }


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("raw"), n_users=40, n_items=50, seed=3, posters=False)


def _metrics(results: dict[str, Any]) -> list[tuple[str, int, dict[str, float]]]:
    return [(r["name"], r["seed"], r["metrics"]) for r in results["runs"]]


def test_full_pipeline_skip_and_reproducibility(raw: Path, tmp_path: Path) -> None:
    backend = FakeBackend(_answer)
    recipe = parse_recipe(_recipe(raw, tmp_path / "a"))
    first = run_pipeline(recipe, backend=backend, progress=False, echo=lambda _: None)

    stages = [s["stage"] for s in first["stages"]]
    assert stages[:4] == ["prepare", "candidates", "augment", "embed"] and stages[-1] == "report"
    assert sum(s.startswith("train ") for s in stages) == 4 and sum(s.startswith("evaluate ") for s in stages) == 4
    assert {r["name"] for r in first["runs"]} == {"lightgcn", "llmrec"} and len(first["runs"]) == 4
    assert all(0.0 <= r["metrics"]["recall@20"] <= 1.0 for r in first["runs"])
    assert first["augment"]["pairs"]["valid_rate"] == 1.0
    # the token plan beside the measured figures (no tokenizer for the fake model: requests only, tokens not counted)
    assert first["augment"]["pairs"]["plan_requests"] == first["augment"]["pairs"]["sent_requests"] == 40
    assert first["augment"]["pairs"]["plan_prompt_tokens"] is None
    # the inspector's sample and agreement statistics reach the results and the report
    assert len(first["inspection"]["users"]) == 5 and first["inspection"]["agreement"]["users"] == 40
    assert {c["test"] for c in first["comparisons"]} == {"paired t over users", "paired t over seeds"}
    report = tmp_path / "a" / "report"
    assert "recall@20" in (report / "report.md").read_text() and (report / "report.html").read_text().count("<svg")
    assert "## LLM outputs of sampled users" in (report / "report.md").read_text()
    assert "| plan_requests | 40 |" in (report / "report.md").read_text()
    assert json.loads((report / "results.json").read_text())["config_hash"] == recipe.hash
    assert (tmp_path / "a" / "recipe.resolved.toml").read_text().startswith(f"# recipe hash: {recipe.hash}")
    n_calls = len(backend.calls)
    assert n_calls > 0

    again = run_pipeline(recipe, backend=backend, progress=False, echo=lambda _: None)
    assert len(backend.calls) == n_calls, "a rerun must not ask the LLM again"
    assert all(s["skipped"] for s in again["stages"] if s["stage"] != "report")
    assert _metrics(again) == _metrics(first)

    fresh = run_pipeline(parse_recipe(_recipe(raw, tmp_path / "b")), backend=FakeBackend(_answer), progress=False,
                         echo=lambda _: None)
    assert _metrics(fresh) == _metrics(first), "same recipe, same seeds: identical metrics"


def test_from_stage_needs_earlier_artifacts(raw: Path, tmp_path: Path) -> None:
    recipe = parse_recipe(_recipe(raw, tmp_path / "w"))
    with pytest.raises(ArtifactError, match="does not exist"):
        run_pipeline(recipe, stages=select_stages("train", None), progress=False, echo=lambda _: None)


def test_stage_selection() -> None:
    assert select_stages("train", "evaluate") == ("train", "evaluate")
    assert select_stages(None, "prepare") == ("prepare",)
    with pytest.raises(ConfigError, match="unknown stage 'trian'"):
        select_stages("trian", None)
    with pytest.raises(ConfigError, match="comes after"):
        select_stages("report", "prepare")


def test_recipe_validation(raw: Path, tmp_path: Path) -> None:
    base = _recipe(raw, tmp_path)
    with pytest.raises(ConfigError, match=r"unknown table\(s\) \['trian'\]"):
        parse_recipe({**base, "trian": {}})
    with pytest.raises(ConfigError, match=r"train: unknown key\(s\) \['epoch'\]"):
        parse_recipe(base, ["train.epoch=3"])
    with pytest.raises(ConfigError, match=r"runs\.llmrec\.side"):
        parse_recipe(base, ['runs.llmrec.side=["posters"]'])
    with pytest.raises(ConfigError, match="is not one of the runs"):
        parse_recipe(base, ["recipe.baseline=mf"])
    no_aug = {k: v for k, v in base.items() if k not in ("augment", "candidates")}
    with pytest.raises(ConfigError, match="no \\[augment\\] table"):
        parse_recipe(no_aug)
    recipe = parse_recipe(base, ["runs.llmrec.model.variant=faithful", "recipe.seeds=[4]"])
    assert recipe.run("llmrec").train.model.variant == "faithful" and recipe.meta.seeds == (4,)
    assert recipe.hash != parse_recipe(base).hash


def test_shipped_recipes_load() -> None:
    root = Path(__file__).resolve().parents[2] / "recipes"
    recipes = sorted(p for p in root.glob("*.toml") if p.name != "models.toml")
    assert recipes, "no recipes found"
    for path in recipes:
        load_recipe(path)


def test_run_cli_dry_run_with_overrides_after_options(capsys: pytest.CaptureFixture[str]) -> None:
    from llmrec_local.run.__main__ import main

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.toml"
    assert main([str(recipe), "--dry-run", "train.epochs=3", "recipe.seeds=[7]"]) == 0
    out = capsys.readouterr().out
    assert "epochs = 3" in out and "seeds = [7]" in out and "# recipe hash: " in out
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\]"):
        main([str(recipe), "--dry-run", "train.epoch=3"])
