"""A study's results built to order, for the report tests (the `StudyResults` schema of report/stage.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SMOKE = {"alias": "smoke", "backend": "vllm", "model_id": "smoke@844e81c822a6"}
REAL = {"alias": "qwen2-7b", "backend": "vllm", "model_id": "Qwen/Qwen2-7B-Instruct@f2826a0"}


def make_study(*, gain: float = 0.03, p_value: float | None = 0.004, seeds: Sequence[int] = (0, 1, 2),
               model: dict[str, str] | None = None, recipe_model: str | None = None) -> dict[str, Any]:
    """Results of lightgcn (the baseline) against llmrec, which is `gain` better on recall@20 per seed.

    `model` is what the augment jobs recorded (None: no augment stage); `recipe_model` the recipe's
    augment.model (None: no [augment] table); `p_value` None leaves out the comparisons.
    """
    runs = []
    for name, base in (("lightgcn", 0.30), ("llmrec", 0.30 + gain)):
        for seed in seeds:
            runs.append({"name": name, "seed": seed, "model": name, "ablation": "w/o-u" if name == "llmrec" else None,
                         "side": ["item_text"] if name == "llmrec" else [],
                         "metrics": {"recall@20": base + 0.01 * seed, "ndcg@20": base / 2},
                         "curve": [{"epoch": e, "loss": 1.0 / (e + 1), "val": {"recall@20": base * e / 3}}
                                   for e in range(1, 5)]})
    recipe = '[recipe]\nname = "demo"\nbaseline = "lightgcn"\n'
    if recipe_model is not None:
        recipe += f'\n[augment]\nmodel = "{recipe_model}"\nbackend = "vllm"\n'
    results: dict[str, Any] = {
        "recipe": "demo", "config_hash": "abc", "dataset": {"users": 10, "items": 20},
        "stages": [{"stage": "prepare", "wall_s": 1.5, "skipped": False, "path": "x"},
                   {"stage": "train llmrec seed 0", "wall_s": 0.0, "skipped": True, "path": "y"}],
        "runs": runs,
        "comparisons": [] if p_value is None else [
            {"run": "llmrec", "baseline": "lightgcn", "metric": "recall@20", "mean_diff": gain, "p_value": p_value,
             "test": "paired t over users", "n": 608},
            {"run": "llmrec", "baseline": "lightgcn", "metric": "recall@20", "mean_diff": gain, "p_value": 0.5,
             "test": "paired t over seeds", "n": len(seeds)}],
        "resolved_recipe": recipe,
    }
    if model is not None:
        results["augment"] = {
            job: {"model": model, "requests": 10, "valid": 9, "valid_rate": 0.9, "retries": 1, "failures": 1,
                  "output_tokens_per_s": 150.0, "distributions": {"country": {"USA": 3, "France": 1}}}
            for job in ("pairs", "item_attributes")}
    return results

