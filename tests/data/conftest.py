"""Fixtures of the dataset-layer tests: synthetic raw folders (generic and LLMRec layouts) and prepared datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


@pytest.fixture(scope="session")
def synthetic_generic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("raw") / "generic", seed=3)


@pytest.fixture(scope="session")
def synthetic_llmrec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("raw") / "llmrec", layout="llmrec", seed=3)


@pytest.fixture(scope="session")
def prepared_generic(synthetic_generic: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(PrepareConfig(source=synthetic_generic), tmp_path_factory.mktemp("out") / "dataset")
