"""TrainConfig identity: the config hashes of existing runs stay what v0.1 computed."""

from __future__ import annotations

from llmrec_local.train.config import ModelConfig, TrainConfig, train_config_hash


def test_train_config_hashes_are_stable() -> None:
    """Pinned values. v0.1 (commit 58b083b) computed 6ed212aeff91f638 and e0ca81b24bfb19a6; the early-stopping
    defaults changed on purpose since (issue 17: epochs 300, patience 20, min_epochs 50, smoothing 0.5, min_delta
    1e-4), which changed both. Other settings added since (new models' knobs) are `ADDED_SETTING`s, left out of the
    hash at their defaults, so finished runs stay reusable."""
    assert train_config_hash(TrainConfig()) == "dc833d86b7644bcf"
    assert train_config_hash(TrainConfig(model=ModelConfig(name="lightgcn"), epochs=60)) == "273410152291f907"
