"""The tune stage on a tiny synthetic dataset: the artifact, resume after an interruption, a raised budget, median
pruning of a clearly bad learning rate, test data never read, and a changed space refused with a clear message.

Trials are real trainings (LightGCN, a few epochs, 30-40 users): seconds each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmrec_local.artifacts.base import is_complete, read_manifest
from llmrec_local.artifacts.dataset import load_dataset
from llmrec_local.artifacts.tune import read_best, read_study, read_trials, storage_path
from llmrec_local.data.arrays import InteractionArrays
from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.errors import ArtifactError, ConfigError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare
from llmrec_local.train.config import ModelConfig, TrainConfig
from llmrec_local.tune import stage as tune_stage
from llmrec_local.tune.config import tune_config
from llmrec_local.tune.stage import tune

BASE = TrainConfig(model=ModelConfig(name="lightgcn", dim=8, n_layers=1), epochs=4, batch_size=64, lr=0.01,
                   progress=False)
SPACE = {"lr": {"type": "log_float", "low": 1e-3, "high": 5e-2},
         "model.dim": {"type": "categorical", "choices": [8, 16]}}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tune_data")
    raw = generate_synthetic(root / "raw", n_users=40, n_items=30, interactions_per_user=10, posters=False)
    return prepare(PrepareConfig(source=raw, min_rating=None), root / "dataset")


def _config(trials: int, space: dict[str, Any] = SPACE, **extra: Any) -> Any:
    return tune_config({"trials": trials, "space": space, "startup_trials": 2, "prune_startup_trials": 1,
                        "prune_warmup_epochs": 1, **extra})


class Killed(Exception):
    """Stands for a kill in the middle of a trial (raised inside the objective)."""


def _counting(monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None) -> list[int]:
    """Count the trials the stage trains (through the runner's train_trial); interrupt the `fail_on`-th."""
    calls: list[int] = []
    real: Callable[..., dict[str, float]] = tune_stage.train_trial

    def counted(*args: Any, **kwargs: Any) -> dict[str, float]:
        calls.append(1)
        if len(calls) == fail_on:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(tune_stage, "train_trial", counted)
    return calls


def _signature(path: Path) -> list[tuple[str, float | None, dict[str, Any]]]:
    return [(t["state"], t["value"], t["params"]) for t in read_trials(path)]


def test_search_writes_the_artifact_and_a_rerun_does_nothing(data: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tune(_config(3), BASE, data, tmp_path / "tune")
    assert is_complete(out) and not (out / "trials").exists()  # no trial runs left behind
    trials, study, best = read_trials(out), read_study(out), read_best(out)
    assert len(trials) == 3 and sum(study["counts"].values()) == 3
    assert set(best["params"]) == {"lr", "model.dim"} and best["metric"] == "recall@20"
    assert 1e-3 <= best["params"]["lr"] <= 5e-2 and best["params"]["model.dim"] in (8, 16)
    complete = [t["value"] for t in trials if t["state"] == "COMPLETE"]
    assert best["value"] == max(complete) and 0.0 < best["value"] <= 1.0
    assert study["importance"] is not None or study["importance_note"]
    manifest = read_manifest(out)
    assert manifest["search"]["trials"] == 3 and set(manifest["search"]["space"]) == {"lr", "model.dim"}
    assert manifest["input_digests"]["dataset"] == load_dataset(data)[2]["content_digest"]

    calls = _counting(monkeypatch)
    mtime = storage_path(out).stat().st_mtime_ns
    assert tune(_config(3), BASE, data, tmp_path / "tune") == out
    assert calls == [] and storage_path(out).stat().st_mtime_ns == mtime


def test_an_interrupted_search_resumes_without_rerunning_finished_trials(data: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tune(_config(3), BASE, data, tmp_path / "reference")
    calls = _counting(monkeypatch, fail_on=2)
    with pytest.raises(Killed):
        tune(_config(3), BASE, data, tmp_path / "tune")
    assert not is_complete(tmp_path / "tune") and len(calls) == 2
    # A SIGKILL leaves its trial RUNNING in the study (an exception marks it failed): the resume must retire it.
    import optuna

    storage = f"sqlite:///{storage_path(tmp_path / '.tune.partial')}"
    optuna.load_study(study_name="tune", storage=storage).ask()
    calls = _counting(monkeypatch)
    out = tune(_config(3), BASE, data, tmp_path / "tune")
    assert len(calls) == 2  # the interrupted trial and the third; the finished first one is not trained again
    # Seeded per counted trial: the resumed search proposes and finds what an uninterrupted one did.
    assert _signature(out) == _signature(reference)
    assert read_best(out) == read_best(reference)


def test_a_raised_budget_extends_the_finished_search(data: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = _signature(tune(_config(2), BASE, data, tmp_path / "tune"))
    calls = _counting(monkeypatch)
    out = tune(_config(4), BASE, data, tmp_path / "tune")
    assert len(calls) == 2 and read_manifest(out)["search"]["trials"] == 4
    assert _signature(out)[:2] == first and len(read_trials(out)) == 4


def test_median_pruning_stops_a_trial_that_does_not_learn(data: Path, tmp_path: Path) -> None:
    """lr = 1e-9 leaves the embeddings where they started: below the median of a learning trial at epoch 1 on."""
    space = {"lr": {"type": "categorical", "choices": [0.05, 1e-9]}}
    out = tune(_config(4, space, startup_trials=4), replace_epochs(BASE, 6), data, tmp_path / "tune")
    trials = read_trials(out)
    tiny = [t for t in trials if t["params"]["lr"] == 1e-9]
    first_complete = min(t["number"] for t in trials if t["state"] == "COMPLETE")
    late_tiny = [t for t in tiny if t["number"] > first_complete]
    assert late_tiny and all(t["state"] == "PRUNED" and t["last_epoch"] < 6 for t in late_tiny)
    assert read_best(out)["params"]["lr"] == 0.05


def replace_epochs(config: TrainConfig, epochs: int) -> TrainConfig:
    from dataclasses import replace

    return replace(config, epochs=epochs)


def test_test_interactions_are_never_read(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Altering every test interaction changes nothing in the search, and the trainer only evaluates validation."""
    from llmrec_local.train import stage as train_stage

    arrays = load_dataset(data)[0]
    rng = np.random.default_rng(0)
    test = arrays.test.copy()
    test[:, 1] = rng.integers(0, arrays.n_items, len(test))
    altered = InteractionArrays.from_pairs(arrays.n_users, arrays.n_items, arrays.train, arrays.val, test)
    splits: list[str] = []
    real = train_stage._evaluate_split

    def spy(model: Any, arrays: Any, split: str, *args: Any) -> dict[str, float]:
        splits.append(split)
        return real(model, arrays, split, *args)

    monkeypatch.setattr(train_stage, "_evaluate_split", spy)
    a = tune(_config(2), BASE, arrays, tmp_path / "a")
    b = tune(_config(2), BASE, altered, tmp_path / "b")
    assert _signature(a) == _signature(b)
    assert splits and set(splits) == {"val"}


def test_a_changed_space_is_refused_with_a_clear_message(data: Path, tmp_path: Path) -> None:
    tune(_config(2), BASE, data, tmp_path / "tune")
    space = {**SPACE, "lr": {"type": "log_float", "low": 1e-4, "high": 5e-2}}
    with pytest.raises(ArtifactError, match=r"changed space\.lr .*--force"):
        tune(_config(2, space), BASE, data, tmp_path / "tune")
    out = tune(_config(2, space), BASE, data, tmp_path / "tune", force=True)
    assert read_manifest(out)["search"]["space"]["lr"]["low"] == 1e-4


def test_bad_searches_are_config_errors(data: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError, match="selects on test"):
        tune(_config(2), replace(BASE, protocol="paper"), data, tmp_path / "t")
    with pytest.raises(ConfigError, match="empty"):
        tune(_config(2, {}), BASE, data, tmp_path / "t")
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        _config(2, {"lrr": {"type": "float", "low": 0.0, "high": 1.0}})
    with pytest.raises(ConfigError, match="cannot be tuned"):
        _config(2, {"seed": {"type": "int", "low": 0, "high": 3}})
    with pytest.raises(ConfigError, match="low > 0"):
        _config(2, {"lr": {"type": "log_float", "low": 0.0, "high": 1.0}})


def test_the_base_trial_trains_the_runs_own_settings_first(data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """tune.base_trial: trial 0 is the base config (a None-valued key is left unset), the best is never below it,
    a kill during it proposes it again, and the search identity changes only when the setting is on."""
    from dataclasses import replace

    base = replace(BASE, weight_decay=None)
    space = {**SPACE, "weight_decay": {"type": "log_float", "low": 1e-6, "high": 1e-1}}
    calls = _counting(monkeypatch, fail_on=1)
    with pytest.raises(Killed):
        tune(_config(3, space, base_trial=True), base, data, tmp_path / "tune")
    calls = _counting(monkeypatch)
    out = tune(_config(3, space, base_trial=True), base, data, tmp_path / "tune")
    trials = read_trials(out)
    assert len(calls) == 3 and trials[0]["params"] == {"lr": 0.01, "model.dim": 8, "weight_decay": None}  # unset
    assert read_best(out)["value"] >= trials[0]["value"] and read_study(out)["base_trial"] is True
    assert read_manifest(out)["search"]["base_trial"] is True
    off = tune(_config(2), BASE, data, tmp_path / "off")
    assert "base_trial" not in read_manifest(off)["search"]
    narrow = {**SPACE, "lr": {"type": "log_float", "low": 0.02, "high": 5e-2}}
    with pytest.raises(ConfigError, match=r"own lr = 0\.01 lies outside .*widen tune\.space\.lr"):
        tune(_config(2, narrow, base_trial=True), BASE, data, tmp_path / "bad")


def test_pruning_before_the_stopping_floor_is_warned(data: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A pruner that may fire before early stopping could (min_epochs, here the 4-epoch cap) says so, with the fix."""
    with caplog.at_level("WARNING", logger="llmrec_local.tune.stage"):
        tune(_config(1), BASE, data, tmp_path / "warned")
    assert "set tune.prune_warmup_epochs = 4" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="llmrec_local.tune.stage"):
        tune(_config(1, prune_warmup_epochs=4), BASE, data, tmp_path / "quiet")
    assert "prune_warmup_epochs" not in caplog.text
