"""Early stopping on the validation curve, in epochs, with a floor, a smoothed curve and a minimum improvement.

Real sparse splits have a popularity plateau: validation recall sits at the popularity level for tens of epochs
before it climbs, so a rule that counts a few evaluations from epoch 1 stops on the plateau. The rule here:

* ``min_epochs``: never stop before this epoch;
* ``patience`` is counted in **epochs** (not evaluations), so it means the same whatever ``eval_every`` is;
* improvement is judged on an exponentially smoothed curve ``s_t = a * s_{t-1} + (1 - a) * v_t`` (``a`` =
  ``smoothing``; ``s`` starts at the first value) and must exceed the best smoothed value so far by ``min_delta``;
  one lucky evaluation on a noisy curve then neither resets the patience nor hides a slow decline.

Stop after the evaluation at epoch ``e`` when ``e >= min_epochs`` and ``e - last_improvement > patience``.
With ``smoothing = 0`` and ``min_delta = 0`` this is "stop after more than `patience` epochs without a new best".
Model selection is separate: the checkpoint kept is always the one with the best raw validation value.
A run that reaches its epoch cap while the smoothed curve improved within the last ``patience`` epochs is
``still_improving``: the trainer says so in its log and manifest (raise ``epochs``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass
class EarlyStopping:
    """Stopping state of one run (plain fields: it is saved in every checkpoint so that a resumed run continues it).

    Args:
        patience: epochs without a smoothed improvement before stopping.
        min_epochs: no stop before this epoch.
        smoothing: weight ``a`` of the past in the smoothed curve, in [0, 1); 0 = the raw values.
        min_delta: the smoothed value must beat its best by more than this to count as an improvement.
    """

    patience: int
    min_epochs: int = 0
    smoothing: float = 0.0
    min_delta: float = 0.0
    best: float = -math.inf            # best raw value (model selection)
    best_epoch: int = -1
    smoothed: float | None = None      # current smoothed value
    best_smoothed: float = -math.inf
    last_improvement: int = 0          # epoch of the last smoothed improvement (0 = none yet)
    last_epoch: int = 0
    stopped: bool = False

    def __post_init__(self) -> None:
        if self.patience < 0 or self.min_epochs < 0 or self.min_delta < 0 or not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"need patience >= 0, min_epochs >= 0, min_delta >= 0, 0 <= smoothing < 1; got "
                             f"{self.patience}, {self.min_epochs}, {self.min_delta}, {self.smoothing}")

    def observe(self, epoch: int, value: float) -> bool:
        """Record the validation `value` measured after `epoch` (1-based); True when it is a new raw best (the
        caller keeps that checkpoint). Sets `stopped` when the rule says so."""
        self.last_epoch = epoch
        self.smoothed = value if self.smoothed is None else (
            self.smoothing * self.smoothed + (1.0 - self.smoothing) * value)
        if self.smoothed > self.best_smoothed + self.min_delta:
            self.best_smoothed = self.smoothed
            self.last_improvement = epoch
        new_best = value > self.best
        if new_best:
            self.best, self.best_epoch = value, epoch
        self.stopped = epoch >= self.min_epochs and epoch - self.last_improvement > self.patience
        return new_best

    def still_improving(self) -> bool:
        """True when the smoothed curve improved within the last `patience` epochs of what ran (a run cut by its
        epoch cap while still climbing)."""
        return not self.stopped and self.last_epoch - self.last_improvement <= self.patience

    def to_dict(self) -> dict[str, float | int | bool | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, float | int | bool | None]) -> "EarlyStopping":
        return cls(**state)  # type: ignore[arg-type]


def replay(curve: Iterable[tuple[int, float]], rule: EarlyStopping, epochs: int | None = None) -> EarlyStopping:
    """Feed a recorded validation curve to `rule` and return it: what another stopping rule would have done.

    `curve`: ``(epoch, value)`` pairs, oldest first (a run's ``train_log.jsonl`` records that have ``val``); fed
    until the rule stops, the curve ends, or the epoch exceeds `epochs` (the other rule's cap). Afterwards
    ``rule.best_epoch`` is the checkpoint that rule keeps, ``rule.last_epoch`` where it stopped and ``rule.stopped``
    False means the recorded curve ended before the rule decided (or the cap came first).

    Why a replay is exact: training never reads the stopping settings (the initial weights and the sampler are
    seeded from ``seed`` alone), so the run a stricter rule stops is, epoch for epoch, a prefix of the run a looser
    rule stops; the kept checkpoint's test metrics are the longer run's when both rules keep the same epoch. Not for
    runs with ``eval_every = "auto"``: its interval is capped at half the patience (train/sizing.py), so another
    patience may evaluate at other epochs than the recorded curve has.
    """
    for epoch, value in curve:
        if epochs is not None and epoch > epochs:
            break
        rule.observe(epoch, value)
        if rule.stopped:
            break
    return rule
