"""Recipe rules owned by the runner's config: seeds come only from ``recipe.seeds``; keys that moved out of
``[augment]`` name their new place; ``[candidates]`` becomes a `CandidatesConfig`."""

from __future__ import annotations

from typing import Any

import pytest

from llmrec_local.candidates.config import CandidatesConfig
from llmrec_local.errors import ConfigError
from llmrec_local.run.config import parse_recipe


def _recipe(**tables: Any) -> dict[str, Any]:
    return {"recipe": {"name": "t", "seeds": [3, 4]}, "prepare": {"source": "data/x"},
            "augment": {"model": "fake", "jobs": ["pairs"]}, **tables}


def test_candidates_table_is_a_candidates_config() -> None:
    recipe = parse_recipe(_recipe(candidates={"k": 7, "epochs": 2, "model": {"dim": 8}}))
    assert recipe.candidates == CandidatesConfig(k=7, epochs=2, model=recipe.candidates.model)
    assert recipe.candidates.model.name == "lightgcn" and recipe.candidates.model.dim == 8
    # the base model's seed is the recipe's first seed, like every run's
    assert recipe.candidates.train_config(recipe.meta.seeds[0]).seed == 3


@pytest.mark.parametrize("table,override", [("train", "train.seed=1"), ("runs.a", "runs.a.seed=1"),
                                            ("candidates", "candidates.seed=1")])
def test_a_seed_outside_recipe_seeds_is_an_error(table: str, override: str) -> None:
    with pytest.raises(ConfigError, match=rf"{table.replace('.', '[.]')}\.seed: the seeds come from recipe\.seeds"):
        parse_recipe(_recipe(runs={"a": {}}), [override])


@pytest.mark.parametrize("key,new", [("k", "candidates.k"), ("base_epochs", "candidates.epochs")])
def test_moved_augment_keys_name_the_new_key(key: str, new: str) -> None:
    with pytest.raises(ConfigError, match=rf"augment\.{key} moved to {new}"):
        parse_recipe(_recipe(), [f"augment.{key}=5"])
