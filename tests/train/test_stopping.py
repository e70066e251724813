"""Early stopping in epochs, with a floor, a smoothed curve and a minimum improvement (known answers)."""

from __future__ import annotations

import json

import pytest

from llmrec_local.train.stopping import EarlyStopping, replay


def _run(rule: EarlyStopping, curve: list[float], eval_every: int = 1) -> int:
    """Feed `curve` (one value per evaluation) and return the epoch after which the rule stopped (or the last)."""
    for i, value in enumerate(curve):
        rule.observe((i + 1) * eval_every, value)
        if rule.stopped:
            return rule.last_epoch
    return rule.last_epoch


def test_raw_rule_stops_after_more_than_patience_epochs_without_a_new_best() -> None:
    rule = EarlyStopping(patience=2)
    assert _run(rule, [0.1, 0.2, 0.15, 0.19, 0.2, 0.3]) == 5  # best at 2; epochs 3, 4, 5 bring nothing -> stop
    assert rule.best == 0.2 and rule.best_epoch == 2


def test_patience_counts_epochs_not_evaluations() -> None:
    rule = EarlyStopping(patience=4)
    # evaluations every 2 epochs: best at epoch 2, no gain at 4 and 6 (4 epochs: not more than 4), stop at 8
    assert _run(rule, [0.3, 0.2, 0.2, 0.2, 0.2], eval_every=2) == 8


def test_min_epochs_carries_a_run_over_a_plateau() -> None:
    plateau = [0.1] * 30 + [0.1 + 0.01 * i for i in range(1, 21)]
    assert _run(EarlyStopping(patience=10), plateau) == 12  # first value at 1, eleven flat epochs after it
    rule = EarlyStopping(patience=10, min_epochs=40)
    assert _run(rule, plateau) == 50 and rule.best_epoch == 50 and rule.still_improving()


def test_smoothing_ignores_one_lucky_evaluation() -> None:
    """A single spike resets a raw rule's patience; on the smoothed curve it barely registers, so a declining
    curve still stops, while the raw best (model selection) still remembers the spike."""
    curve = [0.5, 0.49, 0.48, 0.6, 0.47, 0.46, 0.45, 0.44]
    assert _run(EarlyStopping(patience=3), curve) == 8  # the spike at epoch 4 restarts the raw patience
    # smoothed (a = 0.8): 0.5, 0.498, 0.4944, 0.5155 (< 0.5 + 0.02: no improvement), 0.5064 -> 5 - 1 > 3
    smooth = EarlyStopping(patience=3, smoothing=0.8, min_delta=0.02)
    assert _run(smooth, curve) == 5
    assert smooth.best == 0.6 and smooth.best_epoch == 4


def test_min_delta_needs_a_real_improvement() -> None:
    rule = EarlyStopping(patience=2, min_delta=0.05)
    assert _run(rule, [0.30, 0.31, 0.32, 0.33]) == 4  # gains of 0.01 never count
    assert rule.best_epoch == 4  # ... but the checkpoint kept is still the best raw value


def test_still_improving_at_the_cap_and_not_after_a_stop() -> None:
    rising = EarlyStopping(patience=5)
    _run(rising, [0.1 * i for i in range(1, 11)])
    assert not rising.stopped and rising.still_improving()
    flat = EarlyStopping(patience=2)
    _run(flat, [0.5, 0.4, 0.4, 0.4])
    assert flat.stopped and not flat.still_improving()


def test_state_round_trips_for_resumed_runs() -> None:
    rule = EarlyStopping(patience=3, smoothing=0.5, min_epochs=2)
    _run(rule, [0.1, 0.3, 0.2])
    again = EarlyStopping.from_dict(rule.to_dict())
    assert again == rule
    assert again.observe(4, 0.5) == rule.observe(4, 0.5)


@pytest.mark.parametrize("kwargs", [{"patience": -1}, {"patience": 1, "smoothing": 1.0},
                                    {"patience": 1, "min_delta": -0.1}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)


def test_trainer_honours_min_epochs_and_reports_how_it_stopped(tmp_path, planted_arrays) -> None:
    """patience 0 would stop right after the first non-improving epoch; min_epochs holds the run to its floor, and
    the manifest says why the run ended."""
    import json
    from dataclasses import replace

    from llmrec_local.train import ModelConfig, TrainConfig, train

    base = TrainConfig(model=ModelConfig(name="mf"), epochs=12, batch_size=128, lr=0.5, patience=0, min_epochs=0,
                       smoothing=0.0, min_delta=0.0, progress=False)
    free = train(base, planted_arrays, tmp_path / "free")
    held = train(replace(base, min_epochs=10), planted_arrays, tmp_path / "held")
    free_m, held_m = (json.loads((r / "manifest.json").read_text()) for r in (free, held))
    assert free_m["epochs_run"] < 10 and free_m["stopping"]["reason"] == "patience"
    assert held_m["epochs_run"] >= 10


def test_run_cut_at_the_cap_while_improving_says_so(tmp_path, planted_arrays, caplog) -> None:
    import json
    import logging

    from llmrec_local.train import ModelConfig, TrainConfig, train

    config = TrainConfig(model=ModelConfig(name="lightgcn"), epochs=3, batch_size=128, lr=0.01, patience=10,
                         progress=False)
    with caplog.at_level(logging.WARNING):
        run = train(config, planted_arrays, tmp_path / "run")
    stop = json.loads((run / "manifest.json").read_text())["stopping"]
    assert stop == {"reason": "epoch_cap", "last_improvement_epoch": stop["last_improvement_epoch"],
                    "still_improving": True}
    assert "still improving at the epoch cap" in caplog.text and "raise train.epochs" in caplog.text


def _plateau_curve() -> list[float]:
    """Validation Recall@20 shaped like LightGCN's on the popularity-plateau split (`data.synthetic.PLATEAU`, lr
    1e-3): the popularity level (0.202, evaluation noise of +-0.001) from epoch 3 to 22, then a slow climb of about
    0.0009 per epoch to 0.244 at epoch 70, then a slow decline."""
    noise = [0.0, 0.001, -0.001, 0.0005, -0.0005]
    curve = [0.06, 0.19] + [0.202 + noise[e % 5] for e in range(3, 23)]
    curve += [0.202 + 0.0009 * (e - 22) for e in range(23, 71)]
    return curve + [curve[-1] - 0.0004 * (e - 70) for e in range(71, 151)]


def test_default_rule_trains_past_the_popularity_plateau() -> None:
    """v0.1's rule (patience 10, no floor, raw curve) stops on the plateau with the popularity-level model; the
    defaults carry the run past it, keep the best epoch of the climb and stop within patience + smoothing lag of
    it (not at the cap)."""
    from llmrec_local.train.config import TrainConfig

    curve = _plateau_curve()
    old = EarlyStopping(patience=10)
    assert _run(old, curve) <= 22 and old.best < 0.205
    d = TrainConfig()
    new = EarlyStopping(d.patience, d.min_epochs, d.smoothing, d.min_delta)
    stopped = _run(new, curve)
    assert new.stopped and new.best_epoch == 70 and 70 + d.patience < stopped <= 70 + d.patience + 5


def test_stopping_defaults_are_part_of_the_config_hash() -> None:
    """The stopping defaults changed on purpose (issue 17), so they are hashed like any setting: runs trained under
    v0.1's defaults are not reused under the new ones, and setting them back gives v0.1's hash."""
    from llmrec_local.train.config import TrainConfig, train_config_hash

    v01 = TrainConfig(epochs=200, patience=10, min_epochs=0, smoothing=0.0, min_delta=0.0)
    assert train_config_hash(TrainConfig()) != train_config_hash(v01)
    assert train_config_hash(TrainConfig(min_epochs=5)) != train_config_hash(TrainConfig())


def test_replay_finds_where_another_rule_stops_on_a_recorded_curve() -> None:
    # a plateau at 0.2 for 15 epochs, then a climb to 0.3 at epoch 30 and a decline
    curve = [(e, 0.2 + (0.01 if e == 2 else 0.0)) for e in range(1, 16)]
    curve += [(e, 0.2 + 0.1 * (e - 15) / 15) for e in range(16, 31)]
    curve += [(e, 0.3 - 0.001 * (e - 30)) for e in range(31, 91)]
    old = replay(curve, EarlyStopping(patience=10))
    assert (old.best_epoch, old.last_epoch, old.stopped) == (2, 13, True)  # v0.1's rule stops on the plateau
    new = replay(curve, EarlyStopping(patience=20, min_epochs=50, smoothing=0.5, min_delta=1e-4))
    # the smoothed curve still rises for two epochs after the raw peak at 30: last improvement 32, stop at 32 + 21
    assert new.stopped and new.best_epoch == 30 and new.last_epoch == 53
    short = replay(curve[:40], EarlyStopping(patience=20, min_epochs=50))
    assert not short.stopped and short.last_epoch == 40  # the recording ended before the rule decided
    capped = replay(curve, EarlyStopping(patience=20), epochs=25)
    assert not capped.stopped and capped.last_epoch == 25 and capped.best_epoch == 25


def test_replaying_a_longer_runs_log_reproduces_a_stricter_runs_stop(tmp_path, planted_arrays) -> None:
    """Training does not read the stopping settings, so the strict run is a prefix of the loose one."""
    from llmrec_local.artifacts.run import read_train_log
    from llmrec_local.train import ModelConfig, TrainConfig, train

    base = dict(model=ModelConfig(name="mf"), epochs=40, batch_size=128, lr=0.02, progress=False, min_epochs=0,
                smoothing=0.0, min_delta=0.0)
    strict = train(TrainConfig(patience=2, **base), planted_arrays, tmp_path / "strict")
    loose = train(TrainConfig(patience=30, **base), planted_arrays, tmp_path / "loose")
    curve = [(r["epoch"], r["val"]["recall@20"]) for r in read_train_log(loose) if "val" in r]
    rule = replay(curve, EarlyStopping(patience=2))
    manifest = json.loads((strict / "manifest.json").read_text())
    assert rule.stopped and (rule.best_epoch, rule.last_epoch) == (manifest["best_epoch"], manifest["epochs_run"])
    assert rule.last_epoch < len(curve)  # the strict rule did stop earlier than the loose one
