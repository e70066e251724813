"""Export finished runs as TensorBoard event files (the optional ``tracking`` extra; works offline).

The only module that imports ``tensorboard`` (house rule 9), lazily, inside `write_events`. What is exported is
read through the run and evaluation artifact modules, never by file name:

- ``train/<part>`` per epoch: the training loss and its parts, as logged (step = epoch);
- ``<split>/<metric>`` per evaluated epoch: the validation curve (e.g. ``val/recall@20``);
- ``time/<name>`` per epoch: seconds spent training and evaluating;
- ``test/<metric>``: the final test metrics of the run's own protocol, at the selected (best) epoch.

Each run becomes one TensorBoard run named by its folder relative to the exported root (``runs/lightgcn-seed0``
for a recipe workdir, ``lightgcn/seed0`` for a multi-seed output), so seeds sit side by side in the UI. MLflow is
not offered: it is a heavy server stack, and TensorBoard already covers viewing the curves offline.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts.base import read_manifest
from ..artifacts.evaluation import eval_dir, read_metrics
from ..artifacts.run import find_runs, read_train_log
from ..errors import DataError

log = logging.getLogger(__name__)

#: Keys of a training-log record that are not curves (the step itself).
_STEP_KEY = "epoch"
#: Keys of a training-log record holding seconds.
_TIME_KEYS = ("train_s", "eval_s")


@dataclass
class RunScalars:
    """The scalars of one run: name (its TensorBoard run), path, and (tag, step, value) points."""

    name: str
    path: Path
    points: list[tuple[str, int, float]] = field(default_factory=list)


def run_scalars(run: Path, name: str) -> RunScalars:
    """Curves of `run`'s training log and its final test metrics (when it has been evaluated)."""
    result = RunScalars(name, run)
    for record in read_train_log(run):
        step = int(record[_STEP_KEY])
        for key, value in record.items():
            if key == _STEP_KEY:
                continue
            if isinstance(value, dict):  # an evaluated epoch: {"val": {"recall@20": ...}}
                result.points += [(f"{key}/{metric}", step, float(v)) for metric, v in value.items()
                                  if isinstance(v, (int, float))]
            elif isinstance(value, (int, float)):
                group = "time" if key in _TIME_KEYS else "train"
                result.points.append((f"{group}/{key}", step, float(value)))
    manifest = read_manifest(run)
    metrics = read_metrics(eval_dir(run, "test", manifest.get("protocol", "standard")))
    if metrics is not None:
        step = int(manifest.get("best_epoch") or manifest.get("epochs_run") or 0)
        result.points += [(f"test/{metric}", step, float(v)) for metric, v in metrics["metrics"].items()
                          if isinstance(v, (int, float))]
    return result


def collect(root: str | Path) -> list[RunScalars]:
    """Every complete run at or below `root` with its scalars; DataError when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--workdir {root} does not exist; give a recipe workdir (e.g. artifacts/quickstart) or a "
                        "multi-seed output folder")
    runs = find_runs(root)
    if not runs:
        raise DataError(f"no finished training run under {root}; train first (python -m llmrec_local.run RECIPE)")
    return [run_scalars(run, run.relative_to(root).as_posix() if run != root else run.name) for run in runs]


def write_events(runs: Sequence[RunScalars], dest: str | Path) -> list[Path]:
    """Write one TensorBoard event file per run under ``dest/<run name>/``; returns the run folders.

    A run folder is written beside its target and swapped in, so an export repeated after more training replaces
    the old curves instead of adding a second copy of every point."""
    from tensorboard.summary import Writer

    dest = Path(dest)
    written = []
    for run in runs:
        target = dest / run.name
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        writer = Writer(str(staging))
        try:
            for tag, step, value in run.points:
                writer.add_scalar(tag, value, step)
        finally:
            writer.close()
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        log.info("%s: %d points -> %s", run.name, len(run.points), target)
        written.append(target)
    return written
