"""The evaluation kind: write_evaluation + read_metrics / read_per_user round trip, and errors for missing files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_local.artifacts.evaluation import eval_dir, read_metrics, read_per_user, write_evaluation
from llmrec_local.errors import ArtifactError


def test_round_trip(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = eval_dir(run, "val", "paper")
    assert out == run / "eval_val_paper" and eval_dir(run, "test", "standard") == run / "eval"
    result = {"config_hash": "h", "metrics": {"recall@20": 0.5}}
    users = np.array([3, 7], dtype=np.int32)
    write_evaluation(out, "h", result, users, {"recall@20": np.array([0.25, 0.75])}, run_dir=run, split="val",
                     protocol="paper")
    assert read_metrics(out) == result
    per_user = read_per_user(run, "val", "paper")
    assert per_user["user"].dtype == np.int64 and per_user["user"].tolist() == [3, 7]
    assert per_user["recall@20"].tolist() == [0.25, 0.75]


def test_absent_evaluations(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "run" / "eval") is None  # not evaluated yet: absent, not an error
    with pytest.raises(ArtifactError, match=r"per_user.parquet does not exist; run `python -m llmrec_local.evaluate"):
        read_per_user(tmp_path / "run")
