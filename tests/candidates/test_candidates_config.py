"""`CandidatesConfig` (K and the base model) and how a recipe's ``[candidates]`` table becomes one."""

from __future__ import annotations

import pytest

from llmrec_local.candidates.config import CandidatesConfig
from llmrec_local.errors import ConfigError
from llmrec_local.run.config import candidates_config
from llmrec_local.train.config import ModelConfig, TrainConfig


def test_defaults_and_the_base_training_config() -> None:
    config = CandidatesConfig()
    assert config.k == 10 and config.model.name == "lightgcn" and config.epochs == 20
    train = CandidatesConfig(epochs=30, patience=5, progress=False).train_config(seed=3)
    assert train == TrainConfig(model=ModelConfig(name="lightgcn"), seed=3, epochs=30, patience=5, progress=False)


def test_range_checks() -> None:
    with pytest.raises(ValueError, match="k must be in"):
        CandidatesConfig(k=1)
    with pytest.raises(ValueError, match="epochs"):
        CandidatesConfig(epochs=0)


def test_table_defaults_to_lightgcn_and_rejects_a_seed() -> None:
    assert candidates_config({"model": {"dim": 16}}).model == ModelConfig(name="lightgcn", dim=16)
    assert candidates_config({"model": {"name": "mf"}}).model.name == "mf"
    with pytest.raises(ConfigError, match=r"candidates\.seed: the seeds come from recipe\.seeds"):
        candidates_config({"seed": 1})
    with pytest.raises(ConfigError, match=r"candidates: unknown key\(s\) \['base_epochs'\]"):
        candidates_config({"base_epochs": 3})
