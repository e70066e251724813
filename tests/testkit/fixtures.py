"""Fixtures shared by several test folders: a tiny prepared synthetic dataset, a stand-in base run (random
embeddings, `testkit.fakes.write_run`) to compute candidates from, and the candidates artifact (K = 5) computed from
it by the candidates stage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.candidates.config import CandidatesConfig
from llmrec_local.candidates.stage import candidates
from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare
from testkit.fakes import write_run


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
def candidates_path(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path, base_run: Path) -> Path:
    """The candidates artifact (K = 5, training items masked) of `base_run` on the tiny dataset."""
    return candidates(CandidatesConfig(k=5), dataset_path, tmp_path_factory.mktemp("cands") / "candidates",
                      base_run=base_run)


@pytest.fixture(scope="session")
def release_val_is_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LLMRec-layout release whose val.json repeats its test.json (as LLMRec's own Netflix release does)."""
    folder = generate_synthetic(tmp_path_factory.mktemp("release") / "val_is_test", layout="llmrec", n_users=30,
                                n_items=40, interactions_per_user=10, seed=5)
    (folder / "val.json").write_bytes((folder / "test.json").read_bytes())
    return folder


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    """A local Ray runtime shared by the executor tests of the session (starting one costs seconds). Session scope:
    with a runtime per module, the embed test's runtime started after the in-process vLLM tests and its actors'
    vectors differed from the local ones in the last bits in one clean-clone CI run (not reproduced in isolation)."""
    pytest.importorskip("ray")
    from testkit.ray import start_local_ray

    yield from start_local_ray()
