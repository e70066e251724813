"""Model selection (`train.selection`): an empty validation set is refused unless the config says how to choose,
the choice is logged and written in the run manifest; and the wall-time estimate (`train.costs`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from llmrec_local.config import config_hash, from_mapping
from llmrec_local.errors import ConfigError, DataError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare
from llmrec_local.train import ModelConfig, TrainConfig, train
from llmrec_local.train.config import train_config_hash
from llmrec_local.train.costs import CostEstimator


@pytest.fixture(scope="module")
def no_validation(release_val_is_test: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release whose validation repeats its test set, prepared with on_leak='drop': validation is empty."""
    return prepare(PrepareConfig(source=release_val_is_test, split="given", on_leak="drop"),
                   tmp_path_factory.mktemp("ds") / "dropped")


@pytest.fixture(scope="module")
def carved(release_val_is_test: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(PrepareConfig(source=release_val_is_test, split="given", val_from_train=5),
                   tmp_path_factory.mktemp("ds") / "carved")


def _config(**kw: object) -> TrainConfig:
    return TrainConfig(model=ModelConfig(name="mf", dim=8), epochs=2, batch_size=64, progress=False, **kw)


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def test_selecting_on_missing_validation_is_refused(no_validation: Path, tmp_path: Path) -> None:
    for config in (_config(), _config(selection="val")):
        with pytest.raises(DataError, match=r"has no validation pairs, but train.selection=.*--val-from-train.*"
                                            r"train.selection = 'last'"):
            train(config, no_validation, tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_selection_last_is_explicit_logged_and_recorded(no_validation: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llmrec_local.train"):
        run = train(_config(selection="last"), no_validation, tmp_path / "run")
    assert "model selection off: the last epoch is kept (selection='last')" in caplog.text
    m = _manifest(run)
    assert m["selection"] == {"setting": "last", "mode": "last", "split": None, "metric": None}
    assert m["best_epoch"] == m["epochs_run"] == 2 and m["selection_split"] is None


def test_carved_validation_selects_on_validation(carved: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llmrec_local.train"):
        run = train(_config(), carved, tmp_path / "run")
    assert "model selection on val (recall@20, every 1 epoch(s))" in caplog.text
    m = _manifest(run)
    assert m["selection"] == {"setting": "auto", "mode": "val", "split": "val", "metric": "recall@20"}
    estimate = m["cost_estimate"]
    assert estimate["after_epoch"] == 1 and estimate["remaining_epochs"] == 1 and not estimate["over_an_hour"]


def test_paper_protocol_selects_on_test(no_validation: Path, tmp_path: Path) -> None:
    run = train(_config(protocol="paper"), no_validation, tmp_path / "run")
    assert _manifest(run)["selection"]["mode"] == "test"


def test_selection_setting_checks_and_hash() -> None:
    with pytest.raises(ConfigError, match="selection='test' picks the model on the test split: that is the paper"):
        from_mapping(TrainConfig, {"selection": "test"}, "train")
    # Added with a default that hashes as before: existing runs keep their hashes.
    assert train_config_hash(_config(selection="auto")) == train_config_hash(_config())
    assert config_hash(_config(selection="last")) != config_hash(_config())


def test_cost_estimate_warns_over_an_hour(caplog: pytest.LogCaptureFixture) -> None:
    """40 s epochs x 100 epochs + 30 evaluations (every 3 epochs) of 20 s: 4,000 + 600 s, over an hour."""
    costs = CostEstimator(epochs=100, eval_every=3, evaluating=True, device="cpu", name="run")
    with caplog.at_level(logging.INFO, logger="llmrec_local.train.costs"):
        costs.update(1, 40.0, None)
        costs.update(2, 42.0, None)
        assert costs.record is None  # no evaluation measured yet
        costs.update(3, 38.0, 20.0)
        costs.update(4, 1.0, None)  # the estimate is made once
    assert costs.record == {"after_epoch": 3, "epoch_s": 40.0, "eval_s": 20.0, "remaining_epochs": 97,
                            "remaining_evaluations": 32, "remaining_s": 97 * 40.0 + 32 * 20.0,
                            "total_s": 120.0 + 20.0 + 97 * 40.0 + 32 * 20.0, "over_an_hour": True,
                            "device": "cpu"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "estimated wall time 1h17m on cpu" in warnings[0].getMessage()
    assert "train.batch_size" in warnings[0].getMessage()
    quick = CostEstimator(epochs=10, eval_every=1, evaluating=False, device="cpu", name="run")
    quick.update(1, 2.0, None)
    assert quick.record is not None and quick.record["total_s"] == 20.0 and not quick.record["over_an_hour"]
