"""Tune artifacts (stage ``tune``): a validation search over one run's settings and its best configuration.

Layout of ``tune/<run>/``:
    best_params.json  ``{"params": {dotted TrainConfig key: value}, "value", "metric", "trial"}``: the settings the
                      runner applies to the run's TrainConfig before its seeds are trained
    trials.parquet    one row per trial: ``number`` (int64), ``state`` (COMPLETE | PRUNED | FAIL), ``value``
                      (float64, the trial's best validation value, or the last reported one when pruned; NaN when
                      none), ``last_epoch`` (int64, last reported epoch, 0 when none), ``duration_s`` (float64) and
                      ``param.<key>`` per searched setting (float64, or string for categorical choices)
    study.json        the search: metric, budget, seed, space, sampler and pruner settings, counts per state, the
                      best trial, parameter importance and a note when it is missing or limited
    study.db          the Optuna study (SQLite): every trial with its intermediate values
    manifest.json     the search identity (space, budget, base config hash, seed), input digests (dataset content,
                      side inputs), counts and the best trial

While the search runs, its staging folder (``.<run>.partial``, `ArtifactWriter(resume=True)`) holds ``study.db``,
so a killed search resumes with its finished trials, and ``trials/`` (scratch run folders of the trial being
trained; removed before publishing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..compat import read_parquet_columns, write_parquet_columns
from .base import check_kind, require_stage, stamp_kind

STAGE = "tune"
KIND = "tune"
SCHEMA_VERSION = 1
BEST_FILE = "best_params.json"
TRIALS_FILE = "trials.parquet"
STUDY_FILE = "study.json"
STORAGE_FILE = "study.db"
SCRATCH_DIR = "trials"
#: Prefix of the per-setting columns of the trials table.
PARAM_PREFIX = "param."


def storage_path(folder: str | Path) -> Path:
    """The SQLite study inside an artifact (or its staging folder)."""
    return Path(folder) / STORAGE_FILE


def scratch_dir(folder: str | Path) -> Path:
    """Where trial runs are trained inside a search's staging folder."""
    return Path(folder) / SCRATCH_DIR


def _param_column(values: list[Any]) -> np.ndarray:
    """Numbers as float64 (NaN where a trial has no value), anything else (categorical strings, booleans) as text."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def write_tune_files(folder: str | Path, manifest: dict[str, Any], *, best: Mapping[str, Any],
                     trials: list[Mapping[str, Any]], study: Mapping[str, Any]) -> None:
    """Write best_params.json, trials.parquet and study.json into the staging folder `folder` and stamp the kind.

    Args:
        best: ``{"params", "value", "metric", "trial"}``.
        trials: one mapping per trial: ``number``, ``state``, ``value`` (None when none), ``last_epoch``,
            ``duration_s``, ``params`` (dotted key -> value).
        study: the search summary (study.json).
    """
    folder = Path(folder)
    (folder / BEST_FILE).write_text(json.dumps(dict(best), indent=2, sort_keys=True) + "\n")
    (folder / STUDY_FILE).write_text(json.dumps(dict(study), indent=2, sort_keys=True, default=str) + "\n")
    keys = sorted({k for t in trials for k in t["params"]})
    columns: dict[str, np.ndarray] = {
        "number": np.array([t["number"] for t in trials], dtype=np.int64),
        "state": np.array([t["state"] for t in trials], dtype=object),
        "value": np.array([np.nan if t["value"] is None else t["value"] for t in trials], dtype=np.float64),
        "last_epoch": np.array([t["last_epoch"] for t in trials], dtype=np.int64),
        "duration_s": np.array([t["duration_s"] for t in trials], dtype=np.float64),
        **{PARAM_PREFIX + k: _param_column([t["params"].get(k) for t in trials]) for k in keys},
    }
    write_parquet_columns(folder / TRIALS_FILE, columns)
    stamp_kind(manifest, KIND, SCHEMA_VERSION)


def _open(path: str | Path) -> Path:
    path = Path(path)
    check_kind(path, require_stage(path, STAGE), KIND, SCHEMA_VERSION)
    return path


def read_best(path: str | Path) -> dict[str, Any]:
    """best_params.json of a complete tune artifact (ArtifactError when it is missing, unfinished or foreign)."""
    return json.loads((_open(path) / BEST_FILE).read_text())


def read_study(path: str | Path) -> dict[str, Any]:
    """study.json of a complete tune artifact."""
    return json.loads((_open(path) / STUDY_FILE).read_text())


def read_trials(path: str | Path) -> list[dict[str, Any]]:
    """The trials table as rows: ``number``, ``state``, ``value`` (None when none), ``last_epoch``, ``duration_s``,
    ``params`` (dotted key -> value; numbers come back as float, a missing value as None)."""
    columns = read_parquet_columns(_open(path) / TRIALS_FILE)
    keys = [k for k in columns if k.startswith(PARAM_PREFIX)]
    rows = []
    for i in range(len(columns["number"])):
        value = float(columns["value"][i])
        params = {}
        for k in keys:
            v = columns[k][i]
            params[k[len(PARAM_PREFIX):]] = (None if v == "" else str(v)) if isinstance(v, str) else \
                (None if np.isnan(v) else float(v))
        rows.append({"number": int(columns["number"][i]), "state": str(columns["state"][i]),
                     "value": None if np.isnan(value) else value, "last_epoch": int(columns["last_epoch"][i]),
                     "duration_s": float(columns["duration_s"][i]), "params": params})
    return rows


__all__ = ["BEST_FILE", "KIND", "STAGE", "STORAGE_FILE", "STUDY_FILE", "TRIALS_FILE", "read_best", "read_study",
           "read_trials", "scratch_dir", "storage_path", "write_tune_files"]
