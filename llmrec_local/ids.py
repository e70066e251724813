"""Id vocabularies: external ids (strings) <-> contiguous indices 0..n-1, with one policy for unknown ids.

Ids cross every boundary as ids and become indices only through a vocabulary (design principle 6). The dataset
artifact stores one vocabulary per entity (``users.parquet`` / ``items.parquet``: index + external id); imports,
candidate files and the recommendation API all map through :class:`IdVocabulary`, so "is this id known, and what is
its index" has one answer everywhere.

The order of the indices is the prepare stage's (``prepare/stage.py``: numeric when every id is an integer, else
text); a vocabulary only looks up. External ids are compared as text (``"42"`` and ``42`` are the same id): sources
disagree on whether ids are numbers, and a CSV reader's guess must not decide whether an import matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from .errors import DataError

UnknownPolicy = Literal["error", "drop"]


class IdVocabulary:
    """A bijection between external ids (text) and indices ``0..n-1`` of one entity ("user" or "item").

    ``ids[i]`` is the external id of index ``i``. Unknown ids follow one policy: ``"error"`` raises a DataError
    naming the first unknown id, how many there are and where they came from; ``"drop"`` leaves them out (callers
    that drop must count and report what they dropped).
    """

    def __init__(self, entity: str, ids: Sequence[Any]) -> None:
        self.entity = entity
        self.ids: list[str] = [str(v) for v in ids]
        self._index = {v: i for i, v in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            seen: set[str] = set()
            dup = next(v for v in self.ids if v in seen or seen.add(v))  # type: ignore[func-returns-value]
            raise DataError(f"{entity} vocabulary lists id {dup!r} twice; rebuild the dataset artifact")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: Any) -> bool:
        return str(external_id) in self._index

    def unknown(self, external_ids: Iterable[Any]) -> list[str]:
        """The ids of `external_ids` that are not in the vocabulary, in input order (duplicates kept)."""
        return [str(v) for v in external_ids if str(v) not in self._index]

    def index(self, external_ids: Sequence[Any], *, unknown: UnknownPolicy = "error",
              where: str = "input") -> np.ndarray:
        """Indices (int64, shape (n,)) of `external_ids`; see the class docstring for `unknown`.

        `where` names the source in error messages (a file path, "request").
        """
        missing = self.unknown(external_ids)
        if missing and unknown == "error":
            raise DataError(
                f"{where}: {self.entity} id {missing[0]!r} is not in the dataset's vocabulary ({len(missing)} "
                f"unknown of {len(external_ids)}; the vocabulary has {len(self)} ids); the input belongs to another "
                "dataset, or its ids need the same form as the dataset's")
        return np.fromiter((self._index[str(v)] for v in external_ids if str(v) in self._index), dtype=np.int64)

    def check_indices(self, indices: np.ndarray, *, where: str = "input") -> None:
        """DataError when any of `indices` is outside [0, n) (data built for another dataset)."""
        indices = np.asarray(indices)
        bad = indices[(indices < 0) | (indices >= len(self.ids))]
        if bad.size:
            raise DataError(f"{where}: {self.entity} index {int(bad[0])} is outside [0, {len(self.ids)}) of the "
                            "dataset; it was built for another dataset (or holds external ids: name the column "
                            f"{self.entity}_id instead)")

    def __repr__(self) -> str:
        return f"IdVocabulary({self.entity!r}, n={len(self)})"
