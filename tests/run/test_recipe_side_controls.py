"""Recipes with free-text side inputs and shuffle controls: validation, the hash, the trainer's side inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmrec_local.errors import ConfigError
from llmrec_local.run.config import parse_recipe, resolved_dict
from llmrec_local.run.stage import Layout, _side_inputs


def _base(**runs: dict[str, Any]) -> dict[str, Any]:
    return {"recipe": {"name": "t"}, "prepare": {"source": "x"},
            "embed": {"sources": ["item_text", "user_text"], "item_text_file": {"path": "items.csv"},
                      "user_text_file": {"path": "users.csv", "id_column": "userId"}},
            "runs": runs or {"real": {"side": ["item_text", "user_text"], "model": {"name": "llmrec"}}}}


def test_shuffle_is_a_run_option_in_the_hash_only_when_set() -> None:
    real = parse_recipe(_base())
    shuffled = parse_recipe(_base(), ["runs.real.shuffle=[\"item_text\"]"])
    assert shuffled.run("real").shuffle == ("item_text",) and real.run("real").shuffle == ()
    assert real.hash != shuffled.hash
    # recipes without controls keep their resolved form (and hash)
    assert "shuffle" not in resolved_dict(real)["runs"]["real"]
    assert resolved_dict(shuffled)["runs"]["real"]["shuffle"] == ["item_text"]


def test_recipe_checks() -> None:
    with pytest.raises(ConfigError, match="shuffle.*must list side inputs of this run"):
        parse_recipe(_base(r={"side": ["item_text"], "shuffle": ["user_text"], "model": {"name": "llmrec"}}))
    with pytest.raises(ConfigError, match="choose one"):
        parse_recipe(_base(r={"side": ["user_text", "user_profiles"], "model": {"name": "llmrec"}}))
    data = _base()
    data["embed"] = {"sources": ["item_text"]}
    with pytest.raises(ConfigError, match="does not list it"):
        parse_recipe(data)


def test_user_text_fills_the_profile_slot_and_each_seed_draws_its_own_shuffle(tmp_path: Path) -> None:
    spec = parse_recipe(_base(), ["runs.real.shuffle=[\"user_text\"]"]).run("real")
    embedded = {"item_text": tmp_path / "item_text", "user_text": tmp_path / "user_text"}
    side0 = _side_inputs(spec, embedded, Layout(tmp_path), seed=0)
    side1 = _side_inputs(spec, embedded, Layout(tmp_path), seed=1)
    assert side0.user_profiles == tmp_path / "user_text" and side0.item_text == tmp_path / "item_text"
    assert set(side0.shuffle) == {"user_profiles"} and side0.shuffle != side1.shuffle
