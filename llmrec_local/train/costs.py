"""The wall time a training run will take, estimated from its first epochs, and the warning when it is long.

After each epoch of a process (until the estimate has seen an evaluation, when the run evaluates), with
``t_train`` and ``t_eval`` the medians of the epoch and evaluation times measured so far in this process:

    remaining_s = t_train * (epochs - done) + t_eval * #{e in (done, epochs] : e % eval_every == 0}
    total_s     = measured_s (train + evaluation time of this process so far) + remaining_s

It counts every epoch up to ``train.epochs``, so with early stopping it is an upper bound. A total above
:data:`WARN_AFTER_S` is logged as a warning naming the settings that cut it; the last estimate goes into the run
manifest (``cost_estimate``).
"""

from __future__ import annotations

import logging
import statistics
from typing import Any

log = logging.getLogger(__name__)

#: A run whose estimated total exceeds this many seconds (an hour) is announced with a warning.
WARN_AFTER_S = 3600.0


def _hms(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class CostEstimator:
    """Collects epoch and evaluation times and logs one estimate of the run's wall time (module docstring).

    Args:
        epochs: the run's epoch cap; eval_every: evaluation interval; evaluating: whether the run evaluates during
        training (False with ``selection = "last"``); device: shown in the messages; name: the run (its folder).
    """

    def __init__(self, epochs: int, eval_every: int, evaluating: bool, device: str, name: str) -> None:
        self.epochs, self.eval_every, self.evaluating = epochs, eval_every, evaluating
        self.device, self.name = device, name
        self.train_s: list[float] = []
        self.eval_s: list[float] = []
        self.record: dict[str, Any] | None = None

    def update(self, epoch: int, train_s: float, eval_s: float | None) -> None:
        """Record the times of `epoch` (1-based); log the estimate once it is complete (an evaluation measured, when
        the run evaluates), warning when the total exceeds an hour."""
        if self.record is not None:
            return
        self.train_s.append(train_s)
        if eval_s is not None:
            self.eval_s.append(eval_s)
        if self.evaluating and not self.eval_s and epoch < self.epochs:
            return  # wait for the first evaluation: on large catalogues it can cost more than an epoch
        t_train = statistics.median(self.train_s)
        t_eval = statistics.median(self.eval_s) if self.eval_s else 0.0
        left = self.epochs - epoch
        evals = (self.epochs // self.eval_every - epoch // self.eval_every) if self.evaluating else 0
        remaining = t_train * left + t_eval * evals
        total = sum(self.train_s) + sum(self.eval_s) + remaining
        self.record = {"after_epoch": epoch, "epoch_s": round(t_train, 3), "eval_s": round(t_eval, 3),
                       "remaining_epochs": left, "remaining_evaluations": evals, "remaining_s": round(remaining, 1),
                       "total_s": round(total, 1), "over_an_hour": total > WARN_AFTER_S, "device": self.device}
        evaluations = (f"{t_eval:.2f} s per evaluation, every {self.eval_every} epoch(s)" if self.evaluating
                       else "no evaluation during training")
        text = (f"{self.name}: estimated wall time {_hms(total)} on {self.device} ({t_train:.2f} s per epoch x "
                f"{self.epochs} epochs + {evaluations}; measured over {len(self.train_s)} epoch(s); an upper bound "
                f"when early stopping ends the run sooner)")
        if total > WARN_AFTER_S:
            log.warning("%s. That is over an hour: a larger train.batch_size (fewer steps per epoch), a larger "
                        "train.eval_every, fewer train.epochs or a GPU (train.device='cuda') cut it", text)
        else:
            log.info("%s", text)
