"""Index-level view of a prepared dataset for training and evaluation (numpy only: no polars needed, so the
training path also runs on hosts without polars)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class InteractionArrays:
    """Positive user-item pairs of each split as contiguous indices.

    Attributes:
        n_users, n_items: vocabulary sizes; indices are in [0, n_users) and [0, n_items).
        train, val, test: int64 arrays of shape (n_pairs, 2), columns (user, item); val may have 0 rows.
    """

    n_users: int
    n_items: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            a = getattr(self, name)
            if a.ndim != 2 or a.shape[1] != 2:
                raise DataError(f"split {name!r} must have shape (n, 2), got {a.shape}")
            if len(a) and (a[:, 0].min() < 0 or a[:, 0].max() >= self.n_users):
                raise DataError(f"split {name!r} has a user index outside [0, {self.n_users})")
            if len(a) and (a[:, 1].min() < 0 or a[:, 1].max() >= self.n_items):
                raise DataError(f"split {name!r} has an item index outside [0, {self.n_items})")

    @classmethod
    def from_pairs(
        cls, n_users: int, n_items: int, train: np.ndarray, val: np.ndarray | None, test: np.ndarray
    ) -> "InteractionArrays":
        as2 = lambda a: np.asarray(a, dtype=np.int64).reshape(-1, 2)  # noqa: E731
        return cls(n_users, n_items, as2(train), as2(val if val is not None else np.empty((0, 2))), as2(test))
