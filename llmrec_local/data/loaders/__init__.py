"""Source loaders (LLMRec release, MovieLens, generic tables) and format auto-detection.

Every loader returns a :class:`RawData` in canonical columns; :func:`load_source` picks the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DataError
from .base import RawData
from .generic import TABLE_SUFFIXES, find_table, load_generic, split_files
from .llmrec import load_llmrec
from .movielens import detect_movielens, load_movielens

if TYPE_CHECKING:
    from ...prepare.config import PrepareConfig

__all__ = ["RawData", "detect_format", "load_source"]


def detect_format(source: Path, interactions_file: str = "interactions") -> str:
    """"llmrec", "movielens" or "generic" from the files in `source`; DataError listing what was looked for."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: dataset path does not exist; check the path (prepare's source)")
    if source.is_file():
        if source.suffix in TABLE_SUFFIXES:
            return "generic"
        raise DataError(f"{source}: a single file must be a .csv/.tsv/.parquet interactions table; pass its folder "
                        f"for LLMRec or MovieLens data")
    if (source / "train.json").is_file():
        return "llmrec"
    if detect_movielens(source) is not None:
        return "movielens"
    if find_table(source, interactions_file) is not None or split_files(source) is not None:
        return "generic"
    subdirs = [p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")]
    hint = f" (it has sub-folders {sorted(subdirs)[:5]}: is the data in one of them?)" if subdirs else ""
    raise DataError(
        f"{source}: cannot tell the dataset format{hint}. Looked for train.json (LLMRec release), u.data / "
        f"ratings.dat / ratings.csv+movies.csv (MovieLens), {interactions_file}.csv/.tsv/.parquet, "
        f"train+test .csv/.tsv/.parquet or train.txt+test.txt (generic); "
        f"pass the folder that holds these files, or set format explicitly"
    )


def load_source(config: "PrepareConfig") -> RawData:
    """Read ``config.source`` with the loader for ``config.format`` (auto-detected when "auto")."""
    fmt = config.format
    if fmt == "auto":
        fmt = detect_format(Path(config.source), config.interactions_file)
    if not Path(config.source).exists():
        raise DataError(f"{config.source}: dataset path does not exist; check the path (prepare's source)")
    if fmt == "llmrec":
        return load_llmrec(Path(config.source), config.encoding)
    if fmt == "movielens":
        return load_movielens(Path(config.source), config.encoding)
    return load_generic(config)
