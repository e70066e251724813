"""``batch_size = "auto"`` / ``eval_every = "auto"`` (`llmrec_local.train.sizing`): a deterministic rule of the
dataset's sizes, resolved at run start, logged and recorded; the literal "auto" is hashed and the defaults are not
changed. Also: the wall-time warning fires for a default run of ML-1M's size."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from llmrec_local.config import from_mapping
from llmrec_local.data.arrays import InteractionArrays
from llmrec_local.errors import ConfigError
from llmrec_local.train import ModelConfig, TrainConfig, train
from llmrec_local.train import sizing
from llmrec_local.train.config import train_config_hash
from llmrec_local.train.costs import CostEstimator
from llmrec_local.train.sizing import auto_batch_size, auto_eval_every, operation_counts

# Sizes the recipes train on (training pairs; benchmarks/epoch_cost.py --synthetic builds arrays of these sizes).
ML_SMALL, NETFLIX, ML1M, ML10M = 38_506, 68_933, 405_550, 3_500_000


def test_batch_rule_aims_at_a_hundred_steps_and_keeps_small_datasets_at_the_default() -> None:
    assert auto_batch_size(ML_SMALL) == auto_batch_size(NETFLIX) == 1024 == TrainConfig().batch_size
    assert auto_batch_size(ML1M) == 4096  # the measured ML-1M recipe value (100 steps)
    assert auto_batch_size(ML10M) == 32768
    assert auto_batch_size(10**9) == sizing.MAX_BATCH and auto_batch_size(0) == sizing.MIN_BATCH
    for n in (ML1M, ML10M):
        assert 50 <= n // auto_batch_size(n) + 1 <= 200


def _every(n_users: int, n_items: int, n_train: int, layers: int, batch: int = 1024, patience: int = 20) -> int:
    counts = operation_counts(n_users=n_users, n_items=n_items, n_train=n_train, n_eval_users=n_users,
                              batch_size=batch, dim=64, layers=layers)
    return auto_eval_every(counts["evaluation_per_epoch"], patience)


def test_eval_rule_matches_the_measured_costs() -> None:
    """benchmarks/epoch_cost.py (CPU, 1 thread): Netflix-sized MF 1.8 s/epoch vs 6.3 s per validation (every 10th
    epoch by the 25% bound, capped); LightGCN 30 s vs 20.5 s (every 3rd); ML-1M LightGCN at 4096 57 s vs ~4 s
    (every epoch). The operation estimate reproduces each interval."""
    assert _every(13_187, 17_366, 68_069, layers=0) == 10
    assert _every(13_187, 17_366, 68_069, layers=3) == 3
    assert _every(6_040, 3_706, ML1M, layers=3, batch=4096) == 1
    # at least two evaluations within the patience
    assert _every(13_187, 17_366, 68_069, layers=0, patience=6) == 3
    assert _every(13_187, 17_366, 68_069, layers=0, patience=1) == 1
    assert auto_eval_every(0.0, 20) == 1 and auto_eval_every(0.25, 20) == 1 and auto_eval_every(0.26, 20) == 2


def test_auto_settings_parse_and_hash_the_literal() -> None:
    auto = from_mapping(TrainConfig, {"batch_size": "auto", "eval_every": "auto"}, "train")
    assert auto.batch_size == "auto" and auto.eval_every == "auto"
    assert train_config_hash(TrainConfig()) == "dc833d86b7644bcf"  # defaults unchanged (pinned)
    assert train_config_hash(TrainConfig(batch_size=1024)) == train_config_hash(TrainConfig())
    assert train_config_hash(auto) != train_config_hash(TrainConfig())
    for bad in ({"batch_size": "big"}, {"batch_size": 0}, {"eval_every": -1}, {"eval_every": "sometimes"}):
        with pytest.raises(ConfigError):
            from_mapping(TrainConfig, bad, "train")


def test_run_resolves_logs_and_records_the_sizes(planted_arrays: InteractionArrays, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # a smaller floor and target, so that the 1,320 training pairs of the planted data resolve to a batch of 128
    monkeypatch.setattr(sizing, "MIN_BATCH", 64)
    monkeypatch.setattr(sizing, "TARGET_STEPS", 10)
    config = TrainConfig(model=ModelConfig(name="mf", dim=8), epochs=4, batch_size="auto", eval_every="auto",
                         progress=False)
    with caplog.at_level(logging.INFO, logger="llmrec_local.train"):
        run = train(config, planted_arrays, tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    n_train = len(planted_arrays.train)
    assert n_train == 1320
    record = manifest["sizing"]
    assert record["batch_size"] == {"setting": "auto", "value": 128, "steps_per_epoch": 1320 // 128 + 1}
    assert record["eval_every"] == {"setting": "auto", "value": 2}  # an evaluation ~ 0.5 MF epochs here
    assert record["inputs"] == {"users": 120, "items": 150, "train_pairs": 1320, "eval_users": 120, "dim": 8,
                                "layers": 0}
    assert "batch_size auto -> 128 (11 steps per epoch), eval_every auto -> 2" in caplog.text
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [("val" in r) for r in log] == [False, True, False, True]
    assert manifest["cost_estimate"]["after_epoch"] == 2
    # the run is identified by the literal: the same config resolves the same way and is reused
    with caplog.at_level(logging.INFO, logger="llmrec_local.train"):
        train(config, planted_arrays, tmp_path / "run")
    assert "is complete for this config" in caplog.text


def test_fixed_settings_leave_no_sizing_record(planted_arrays: InteractionArrays, tmp_path: Path) -> None:
    run = train(TrainConfig(model=ModelConfig(name="mf", dim=8), epochs=1, batch_size=256, progress=False),
                planted_arrays, tmp_path / "run")
    assert "sizing" not in json.loads((run / "manifest.json").read_text())


def test_default_run_of_ml1m_size_warns_over_an_hour(caplog: pytest.LogCaptureFixture) -> None:
    """The defaults (300 epochs, batch 1024, validation every epoch) with the seconds measured on ML-1M-sized data
    (recipes/README.md, "Costs": MF 9.5 s per epoch, LightGCN 187 s, ~3.5 s per validation) exceed an hour even for
    MF, and the trainer's estimator says so."""
    defaults = TrainConfig()
    for epoch_s in (9.5, 187.0):
        costs = CostEstimator(defaults.epochs, int(defaults.eval_every), True, "cpu", "ml1m")
        with caplog.at_level(logging.INFO, logger="llmrec_local.train.costs"):
            costs.update(1, epoch_s, 3.5)
        assert costs.record is not None and costs.record["over_an_hour"]
        assert costs.record["total_s"] == pytest.approx(300 * (epoch_s + 3.5), rel=1e-3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("over an hour" in w and "train.batch_size" in w for w in warnings)
