"""The ``evaluate`` stage: full-ranking metrics of a run's embeddings on a split, written beside the run.

Protocols:
* ``standard`` (default): rank all items, mask train items (and validation items when testing), standard NDCG.
* ``paper``: the original's rules: mask train items only, and also report its NDCG variant (``ndcg_paper@k``).
  Model selection on test is a training-time setting (``train.protocol = "paper"``); the run manifest records it.

Output folder: ``<run>/eval`` for (test, standard), ``<run>/eval_<split>_<protocol>`` otherwise (layout:
:mod:`llmrec_local.artifacts.evaluation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..artifacts.base import artifact_digest, require_stage
from ..artifacts.dataset import load_dataset
from ..artifacts.evaluation import eval_dir, read_metrics, write_evaluation
from ..artifacts.run import load_run_embeddings
from ..data.arrays import InteractionArrays
from ..errors import ArtifactError, ConfigError
from ..hashing import stable_hash
from .ranking import PairIndex, rank_and_score, summarize


def per_user_metrics(
    user: torch.Tensor, item: torch.Tensor, arrays: InteractionArrays, split: str, protocol: str,
    chunk: int | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Evaluated users (those with >= 1 `split` item) and their metrics, as numpy arrays."""
    if split not in ("val", "test"):
        raise ConfigError(f"split must be 'val' or 'test', got {split!r}")
    if protocol not in ("standard", "paper"):
        raise ConfigError(f"protocol must be 'standard' or 'paper', got {protocol!r}")
    if user.shape[0] != arrays.n_users or item.shape[0] != arrays.n_items:
        raise ArtifactError(
            f"the run has {user.shape[0]} users x {item.shape[0]} items but the dataset has {arrays.n_users} x "
            f"{arrays.n_items}; evaluate the run on the dataset it was trained on"
        )
    dev = user.device
    truth = PairIndex.build(getattr(arrays, split), arrays.n_users, arrays.n_items, dev)
    exclude = [PairIndex.build(arrays.train, arrays.n_users, arrays.n_items, dev)]
    if split == "test" and protocol == "standard" and len(arrays.val):
        exclude.append(PairIndex.build(arrays.val, arrays.n_users, arrays.n_items, dev))
    users, per_user = rank_and_score(user, item, truth, exclude, chunk=chunk, with_paper_ndcg=protocol == "paper")
    return users.cpu().numpy(), {k: v.cpu().numpy() for k, v in per_user.items()}


def evaluate(
    run_dir: Path, dataset: Path | InteractionArrays, *, split: Literal["val", "test"] = "test",
    protocol: Literal["standard", "paper"] = "standard", device: str = "cpu", force: bool = False,
) -> dict[str, Any]:
    """Evaluate a run on `split`; writes the evaluation artifact (means and per-user metrics); returns the means
    (the metrics.json content)."""
    run_dir = Path(run_dir)
    run_manifest = require_stage(run_dir, "train")
    arrays, _, dataset_info = load_dataset(dataset)
    trained_on = (run_manifest.get("dataset") or {}).get("config_hash")
    if trained_on and dataset_info["config_hash"] and trained_on != dataset_info["config_hash"]:
        raise ArtifactError(
            f"{run_dir} was trained on dataset config {trained_on}, but {dataset_info['path']} has config "
            f"{dataset_info['config_hash']}; evaluate on the dataset the run was trained on"
        )
    out = eval_dir(run_dir, split, protocol)
    chash = stable_hash({"run": run_manifest["config_hash"], "dataset": dataset_info["config_hash"],
                         "split": split, "protocol": protocol})
    # Provenance: metrics of a run retrained, or of a dataset rebuilt, since they were computed are recomputed.
    inputs = {"run": artifact_digest(run_dir), "dataset": dataset_info["content_digest"]}
    done = None if force else read_metrics(out, inputs)
    if done is not None and done.get("config_hash") == chash:
        return done
    user, item = load_run_embeddings(run_dir, device)
    users, per_user = per_user_metrics(user, item, arrays, split, protocol)
    result = {
        "run": str(run_dir), "split": split, "protocol": protocol, "config_hash": chash,
        "n_users_evaluated": int(len(users)), "n_users": arrays.n_users, "n_items": arrays.n_items,
        "metrics": summarize({k: torch.from_numpy(v) for k, v in per_user.items()}),
        "selection_split": run_manifest.get("selection_split"), "best_epoch": run_manifest.get("best_epoch"),
    }
    write_evaluation(out, chash, result, users, per_user, run_dir=run_dir, split=split, protocol=protocol,
                     inputs=inputs)
    return result
