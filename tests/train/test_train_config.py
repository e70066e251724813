"""TrainConfig identity: the config hashes of existing runs stay what v0.1 computed."""

from __future__ import annotations

from llmrec_local.train.config import ModelConfig, TrainConfig, train_config_hash


def test_train_config_hashes_are_stable() -> None:
    """Pinned values computed by v0.1 (commit 58b083b): settings added since (early stopping, new models' knobs)
    are `ADDED_SETTING`s, left out of the hash at their defaults, so finished runs stay reusable."""
    assert train_config_hash(TrainConfig()) == "6ed212aeff91f638"
    assert train_config_hash(TrainConfig(model=ModelConfig(name="lightgcn"), epochs=60)) == "e0ca81b24bfb19a6"
