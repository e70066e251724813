"""The embedded default dataset: MovieLens ml-latest-small, shipped in the repository's ``data/`` folder (with its
README.txt, whose licence allows redistribution under the same terms)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .config import PrepareConfig
from .stage import prepare

#: Where a source checkout keeps the bundled raw files.
BUNDLED_RAW = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"
DEFAULT_WORKDIR = Path("artifacts/default")


def bundled_dataset(workdir: str | Path = DEFAULT_WORKDIR) -> Path:
    """Prepare the bundled ml-latest-small into ``<workdir>/dataset`` (skipped when already done) and return it.

    Defaults of `PrepareConfig` apply: ratings >= 4 as implicit feedback, seeded per-user random split with a
    validation set.
    """
    if not (BUNDLED_RAW / "ratings.csv").is_file():
        raise DataError(f"the bundled dataset is not at {BUNDLED_RAW} (an installed copy without the repository's "
                        "data/ folder?); pass --data with a prepared dataset folder instead")
    return prepare(PrepareConfig(source=BUNDLED_RAW, format="movielens"), Path(workdir) / "dataset")
