"""Evaluation artifacts (stage ``evaluate``): a run's metrics on one split under one protocol, written beside the run.

Layout of ``<run>/eval`` (test split, standard protocol) or ``<run>/eval_<split>_<protocol>`` (any other pair):
    metrics.json      means over the evaluated users (``metrics``: name -> float), counts, the config hash
    per_user.parquet  ``user`` (int64) + one float column per metric, one row per evaluated user
    manifest.json     run, split, protocol, n_users

Polars is optional here (GPU hosts may only have pyarrow): parquet goes through `llmrec_local.compat`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..compat import read_parquet_columns, write_parquet_columns
from ..errors import ArtifactError
from .base import ArtifactWriter, check_kind, is_complete, read_manifest, stamp_kind

STAGE = "evaluate"
KIND = "evaluation"
SCHEMA_VERSION = 1
METRICS_FILE = "metrics.json"
PER_USER_FILE = "per_user.parquet"


def eval_dir(run_dir: str | Path, split: str, protocol: str) -> Path:
    """Folder of the evaluation of `run_dir` on `split` under `protocol` (``eval`` for test + standard)."""
    return Path(run_dir) / ("eval" if (split, protocol) == ("test", "standard") else f"eval_{split}_{protocol}")


def write_evaluation(out: str | Path, config_hash: str, result: dict[str, Any], users: np.ndarray,
                     per_user: Mapping[str, np.ndarray], *, run_dir: str | Path, split: str, protocol: str,
                     inputs: dict[str, str] | None = None) -> Path:
    """Write an evaluation artifact at `out` (atomically, through ArtifactWriter).

    Args:
        result: the metrics.json content (means under ``"metrics"``, counts, ``config_hash``).
        users: (n,) evaluated user indices; per_user: metric name -> (n,) values, aligned with `users`.
        inputs: content digests of the run and dataset evaluated (provenance; see `read_metrics`).
    Returns:
        `out`.
    """
    with ArtifactWriter(Path(out), stage=STAGE, config_hash=config_hash, inputs=inputs or {}) as w:
        (w.dir / METRICS_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        write_parquet_columns(w.dir / PER_USER_FILE, {"user": users.astype(np.int64), **per_user})
        w.manifest.update(run=str(run_dir), split=split, protocol=protocol, n_users=int(len(users)))
        stamp_kind(w.manifest, KIND, SCHEMA_VERSION)
    return Path(out)


def read_metrics(folder: str | Path, inputs: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The metrics.json content of a complete evaluation folder, or None when there is none (not evaluated yet,
    or interrupted) or, when `inputs` are given, when it was computed from other run or dataset content (stale):
    callers decide whether that is an error (the skip rule and serving treat it as "absent")."""
    folder = Path(folder)
    if not (is_complete(folder) and (folder / METRICS_FILE).is_file()):
        return None
    manifest = read_manifest(folder)
    check_kind(folder, manifest, KIND, SCHEMA_VERSION)
    if inputs is not None and manifest.get("input_digests") not in (None, inputs):
        return None
    return json.loads((folder / METRICS_FILE).read_text())


def read_per_user(run_dir: str | Path, split: str = "test", protocol: str = "standard") -> dict[str, np.ndarray]:
    """Columns of a written per_user.parquet as numpy arrays: ``user`` (n,) int64 + one (n,) array per metric."""
    path = eval_dir(run_dir, split, protocol) / PER_USER_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist; run `python -m llmrec_local.evaluate --run {run_dir}` first")
    return read_parquet_columns(path)
