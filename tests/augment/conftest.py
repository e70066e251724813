"""Fixtures of the augmentation tests: a tiny prepared synthetic dataset and a stand-in base run (random
embeddings, `augment_fakes.write_run`) to compute candidates from. Scripted FakeBackend answers live in
`augment_fakes.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
from augment_fakes import write_run

from llmrec_local.data import Dataset, PrepareConfig, generate_synthetic, prepare


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("augment_data")
    raw = generate_synthetic(root / "raw", n_users=12, n_items=30, interactions_per_user=8, posters=False)
    return prepare(PrepareConfig(source=raw, min_rating=None), root / "dataset")


@pytest.fixture()
def dataset(dataset_path: Path) -> Dataset:
    return Dataset.load(dataset_path)


@pytest.fixture(scope="session")
def base_run(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Path:
    ds = Dataset.load(dataset_path)
    return write_run(tmp_path_factory.mktemp("run") / "run0", ds.n_users, ds.n_items)


@pytest.fixture(scope="session")
def smoke_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny random smoke LLM (alias ``smoke``), with a hermetic vLLM cache."""
    import os

    from llmrec_local.llm.smoke import build_smoke_model

    os.environ.setdefault("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm_cache")))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    root = tmp_path_factory.mktemp("models")
    build_smoke_model(root / "llmrec-smoke-llm")
    return root
