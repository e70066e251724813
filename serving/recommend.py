"""Top-K recommendations from a finished training run: the logic behind the serving API (no HTTP here).

A run (stage ``train``) stores final representations ``user`` (U, d) and ``item`` (I, d) in
``embeddings.safetensors`` such that every shipped model scores ``s(u, i) = user[u] . item[i]``. Serving is therefore
model-agnostic: load the two matrices plus the run's dataset artifact (for external ids, item metadata and the
interactions to exclude) and rank all items by a matrix-vector product.

Rules:

* **Seen items.** For a known user the items of the train and validation splits are excluded (the model was fitted
  or selected on them; test items are exactly what it should find). ``exclude_seen=False`` ranks everything.
* **Ranking.** Items are sorted by score, descending; equal scores are broken by the smaller item index so the
  answer is deterministic. When fewer than K items remain after exclusion, fewer are returned.
* **Fold-in (a new user from a short history H, no retraining).** The user is represented by the mean of the
  history items' final vectors, ``v = (1/|H|) sum_{i in H} item[i]`` (duplicates counted once), and scored like a
  known user, ``s(i) = item[i] . v``, with the history excluded. Why: one LightGCN hop gives a new node with
  neighbours H the vector ``sum_{i in H} item_i / sqrt(|H| |N(i)|)``; the mean is that hop with uniform instead of
  degree-dependent item weights, and the remaining factor in |H| only rescales the scores of this one user, which
  leaves its ranking unchanged. For MF it is the usual centroid fold-in. Using the final (propagated) item vectors
  rather than layer-0 ones keeps the new user in the space the scores are defined in, for every model we ship.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmrec_local.artifacts.base import require_stage
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.artifacts.evaluation import eval_dir, read_metrics
from llmrec_local.artifacts.run import embeddings_path, read_run_embeddings
from llmrec_local.errors import ArtifactError
from llmrec_local.evaluate.ranking import masked_top_k
from llmrec_local.ids import IdVocabulary

from .config import ServingLimits

#: The fold-in rule as reported by ``GET /model`` (see the module docstring for the reasoning).
FOLD_IN_RULE = "mean of the final item vectors of the history (duplicates once); history items excluded"


class ServingInputError(ValueError):
    """A request the service cannot answer because of its input; the message names the bad value.

    `status` is the HTTP status the API answers with: 422 for a bad value in the query or body.
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class UnknownIdError(ServingInputError):
    """A user or item id that is not in the run's dataset: 404 for the user of a URL path (a missing resource),
    422 for ids inside a request body (a bad value in an otherwise valid request)."""


@dataclass(frozen=True)
class Recommendation:
    """One ranked item: internal index, external id, metadata and score."""

    item: int
    item_id: str
    title: str | None
    year: int | None
    genres: list[str]
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "year": self.year, "genres": self.genres,
                "score": self.score}


def top_k(scores: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The K highest finite scores of each row, best first (equal scores: smaller item index first).

    Args:
        scores: (B, n_items) float; excluded items hold -inf.
        k: >= 1.
    Returns:
        B pairs (items, values); row b holds min(k, number of finite scores in row b) entries.
    """
    values, items = masked_top_k(torch.from_numpy(scores), k)  # the project's one top-K and tie rule
    keep = torch.isfinite(values)
    return [(items[b][keep[b]].numpy(), values[b][keep[b]].numpy()) for b in range(len(values))]


class RunRecommender:
    """A finished run loaded for serving: embeddings, id vocabularies, item metadata and seen items.

    Attributes:
        run_dir, dataset_dir: the artifact folders.
        user_vectors: (U, d) float32; item_vectors: (I, d) float32, score = user . item.
        manifest: the run manifest; metrics: the run's evaluation metrics (``eval/metrics.json``) or None.
    """

    def __init__(self, run_dir: str | Path, dataset_dir: str | Path | None = None,
                 limits: ServingLimits | None = None) -> None:
        """Load the run at `run_dir` and its dataset (from the run manifest unless `dataset_dir` is given).

        Raises ArtifactError when the run is missing, incomplete, of another schema version or stage, when the
        dataset is not the one the run was trained on, or when the embeddings do not match the dataset.
        """
        self.run_dir = Path(run_dir).resolve()
        self.limits = limits or ServingLimits()
        self.manifest = require_stage(self.run_dir, "train")
        trained_on = self.manifest.get("dataset") or {}
        if dataset_dir is None:
            if not trained_on.get("path"):
                raise ArtifactError(f"run {self.run_dir} does not record its dataset folder (it was trained on "
                                    f"in-memory arrays); pass the dataset artifact explicitly (--data DATASET_DIR)")
            dataset_dir = trained_on["path"]
        self.dataset_dir = Path(dataset_dir).resolve()
        try:
            dataset = Dataset.load(self.dataset_dir)
        except ArtifactError as exc:
            raise ArtifactError(f"cannot open the dataset of run {self.run_dir}: {exc}; pass the right dataset "
                                f"artifact with --data DATASET_DIR") from exc
        expected_hash = trained_on.get("config_hash")
        found_hash = dataset.manifest.get("config_hash")
        if expected_hash and expected_hash != found_hash:
            raise ArtifactError(f"run {self.run_dir} was trained on dataset config {expected_hash}, but "
                                f"{self.dataset_dir} has config {found_hash}; serve the run with the dataset it "
                                f"was trained on")
        self.user_vectors, self.item_vectors = self._load_embeddings(dataset)
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.dim = int(self.item_vectors.shape[1])
        self.dataset_manifest = dataset.manifest

        self._users: IdVocabulary = dataset.vocabulary("user")
        self._items: IdVocabulary = dataset.vocabulary("item")
        self.user_ids: list[str] = self._users.ids
        self.item_ids: list[str] = self._items.ids
        items = dataset.items()
        self._titles: list[str | None] = items["title"].to_list()
        self._years: list[int | None] = items["year"].to_list()
        self._genres: list[list[str]] = [list(g or []) for g in items["genres"].to_list()]

        arrays = dataset.arrays()
        seen = np.concatenate([arrays.train, arrays.val])
        seen = seen[np.lexsort((seen[:, 1], seen[:, 0]))]
        # CSR over users: items seen by user u are self._seen_items[indptr[u]:indptr[u + 1]].
        self._seen_items = seen[:, 1].copy()
        self._seen_indptr = np.concatenate([[0], np.cumsum(np.bincount(seen[:, 0], minlength=self.n_users))])
        # Test metrics of the standard evaluation (stage "evaluate" writes <run>/eval/), when it has been run.
        self.metrics: dict[str, Any] | None = read_metrics(eval_dir(self.run_dir, "test", "standard"))

    def _load_embeddings(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """``user`` (U, d) and ``item`` (I, d) as float32 numpy arrays, checked against the dataset's sizes."""
        path = embeddings_path(self.run_dir)
        user, item = read_run_embeddings(self.run_dir)
        user = np.ascontiguousarray(user, dtype=np.float32)
        item = np.ascontiguousarray(item, dtype=np.float32)
        if user.ndim != 2 or item.ndim != 2 or user.shape[1] != item.shape[1]:
            raise ArtifactError(f"{path}: user {user.shape} and item {item.shape} must be (U, d) and (I, d) with "
                                f"the same d; retrain the run")
        if user.shape[0] != dataset.n_users or item.shape[0] != dataset.n_items:
            raise ArtifactError(f"{path} has {user.shape[0]} users x {item.shape[0]} items but dataset "
                                f"{self.dataset_dir} has {dataset.n_users} x {dataset.n_items}; serve the run with "
                                f"the dataset it was trained on (--data)")
        if not (np.isfinite(user).all() and np.isfinite(item).all()):
            raise ArtifactError(f"{path} holds non-finite values (a diverged run); retrain it")
        return user, item

    # ----------------------------------------------------------------------------------------- validation
    def check_k(self, k: int) -> int:
        """`k` if 1 <= k <= min(max_k, n_items), else ServingInputError naming the bound."""
        upper = min(self.limits.max_k, self.n_items)
        if not 1 <= k <= upper:
            which = "the configured max_k" if self.limits.max_k < self.n_items else "the number of items"
            raise ServingInputError(f"k={k} is out of range: it must be between 1 and {upper} ({which})")
        return k

    def user_index(self, user_id: str) -> int:
        """Contiguous index of an external user id; UnknownIdError if the dataset has no such user."""
        if user_id not in self._users:
            raise UnknownIdError(f"unknown user_id {user_id!r}: not in the users table of dataset "
                                 f"{self.dataset_dir}", status=404)
        return int(self._users.index([user_id])[0])

    def _check_known(self, kind: str, ids: Sequence[str], vocabulary: IdVocabulary) -> None:
        """One error (status 422: they are body values) naming up to ten ids of ``kind`` missing from
        `vocabulary`."""
        unknown = vocabulary.unknown(ids)
        if unknown:
            raise UnknownIdError(f"unknown {kind}_id(s) {unknown[:10]!r}{' ...' if len(unknown) > 10 else ''}: "
                                 f"not in the {kind}s table of dataset {self.dataset_dir}", status=422)

    def user_indices(self, user_ids: Sequence[str]) -> np.ndarray:
        """(B,) int64 indices; one error listing every unknown id (status 422: they are body values)."""
        if len(user_ids) > self.limits.max_batch:
            raise ServingInputError(f"{len(user_ids)} users in one batch; at most {self.limits.max_batch} "
                                    f"are accepted (split the request)")
        self._check_known("user", user_ids, self._users)
        return self._users.index(user_ids)

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        """(H,) int64 indices of distinct item ids, first occurrence order; errors name unknown ids."""
        if not item_ids:
            raise ServingInputError("the item history is empty; give at least one known item_id")
        if len(item_ids) > self.limits.max_history:
            raise ServingInputError(f"{len(item_ids)} history items; at most {self.limits.max_history} are "
                                    f"accepted")
        self._check_known("item", item_ids, self._items)
        return np.array(list(dict.fromkeys(self._items.index(item_ids).tolist())), dtype=np.int64)

    # ------------------------------------------------------------------------------------------- ranking
    def seen_items(self, user: int) -> np.ndarray:
        """Train + validation items of user index `user`, sorted."""
        return self._seen_items[self._seen_indptr[user]:self._seen_indptr[user + 1]]

    def _rank(self, queries: np.ndarray, excluded: Sequence[np.ndarray], k: int) -> list[list[Recommendation]]:
        """Rank all items for each query vector: scores = queries @ item.T (B, I), `excluded[b]` set to -inf."""
        scores = queries @ self.item_vectors.T
        for b, items in enumerate(excluded):
            scores[b, items] = -np.inf
        return [[self._recommendation(int(i), float(s)) for i, s in zip(items, values)]
                for items, values in top_k(scores, k)]

    def _recommendation(self, item: int, score: float) -> Recommendation:
        return Recommendation(item, self.item_ids[item], self._titles[item], self._years[item],
                              self._genres[item], score)

    def recommend(self, user_ids: Sequence[str], k: int = 10, *, exclude_seen: bool = True
                  ) -> list[list[Recommendation]]:
        """Top-K for known users (external ids), one list per user, in request order."""
        self.check_k(k)
        users = self.user_indices(user_ids)
        empty = np.empty(0, dtype=np.int64)
        excluded = [self.seen_items(int(u)) if exclude_seen else empty for u in users]
        return self._rank(self.user_vectors[users], excluded, k)

    def fold_in_vector(self, history: np.ndarray) -> np.ndarray:
        """The new user's vector (d,): the mean of the history items' final vectors (module docstring)."""
        return self.item_vectors[history].mean(axis=0, dtype=np.float64).astype(np.float32)

    def recommend_fold_in(self, item_ids: Sequence[str], k: int = 10) -> list[Recommendation]:
        """Top-K for a new user given the external ids of items they liked; the history is excluded."""
        self.check_k(k)
        history = self.item_indices(item_ids)
        return self._rank(self.fold_in_vector(history)[None, :], [history], k)[0]

    def describe(self) -> dict[str, Any]:
        """Model metadata for ``GET /model``."""
        m = self.manifest
        return {
            "run_id": self.run_dir.name, "run_dir": str(self.run_dir), "model": m.get("model"),
            "variant": m.get("variant"), "dim": self.dim, "n_users": self.n_users, "n_items": self.n_items,
            "dataset": {"path": str(self.dataset_dir), "config_hash": self.dataset_manifest.get("config_hash")},
            "run_config_hash": m.get("config_hash"), "created_at": m.get("created_at"),
            "best_epoch": m.get("best_epoch"), "selection_split": m.get("selection_split"),
            "val_metrics": m.get("val_metrics") or None,
            "eval_metrics": None if self.metrics is None else {
                "split": self.metrics.get("split"), "protocol": self.metrics.get("protocol"),
                **(self.metrics.get("metrics") or {})},
            "limits": {"max_k": min(self.limits.max_k, self.n_items), "max_batch": self.limits.max_batch,
                       "max_history": self.limits.max_history, "max_body_bytes": self.limits.max_body_bytes},
            "seen_excluded": ["train", "val"], "fold_in_rule": FOLD_IN_RULE,
        }
