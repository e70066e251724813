"""`PrepareConfig` (`llmrec_local.prepare.config`): validation messages and TOML-friendly values."""

from __future__ import annotations

import pytest

from llmrec_local.config import from_mapping
from llmrec_local.errors import ConfigError
from llmrec_local.prepare.config import PrepareConfig


@pytest.mark.parametrize("bad, message", [
    ({"test_ratio": 1.2}, "test_ratio must be in"), ({"test_ratio": 0.6, "val_ratio": 0.5}, "must be < 1"),
    ({"user_min": -1}, "user_min and item_min must be >= 0"), ({"split": "random", "test_ratio": 0.0},
                                                                "needs test_ratio > 0"),
    ({"split": "kfold"}, "is not one of"), ({"colour": 1}, "unknown key"), ({"min_rating": "high"}, "matches none"),
])
def test_config_validation(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(PrepareConfig, {"source": "x", **bad}, "prepare")


def test_config_is_toml_friendly() -> None:
    cfg = from_mapping(PrepareConfig, {"source": "data/x", "min_rating": 3, "user_min": 5, "split": "temporal"})
    assert cfg.min_rating == 3.0 and str(cfg.source) == "data/x"


def test_quickstart_dataset_config_hash_is_stable() -> None:
    """Pinned: a changed hash makes every user's existing dataset "another config" (settings added later must use
    `llmrec_local.config.ADDED_SETTING`). The value is the one v0.1 computed for recipes/quickstart.toml."""
    from llmrec_local.config import config_hash

    config = PrepareConfig(source="data/ml-latest-small", format="movielens")
    assert config_hash(config) == "e53b1069e87fe683"
