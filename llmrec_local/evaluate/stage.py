"""The ``evaluate`` stage: full-ranking metrics of a run's embeddings on a split, written beside the run.

Protocols:
* ``standard`` (default): rank all items, mask train items (and validation items when testing), standard NDCG.
* ``paper``: the original's rules: mask train items only, and also report its NDCG variant (``ndcg_paper@k``).
  Model selection on test is a training-time setting (``train.protocol = "paper"``); the run manifest records it.

Output folder: ``<run>/eval`` for (test, standard), ``<run>/eval_<split>_<protocol>`` otherwise, holding
``metrics.json`` (means over users + counts) and ``per_user.parquet`` (user + one column per metric).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..artifacts.base import ArtifactWriter, require_stage
from ..data.arrays import InteractionArrays
from ..errors import ArtifactError, ConfigError
from ..hashing import stable_hash
from .ranking import PairIndex, rank_and_score, summarize


def eval_dir(run_dir: Path, split: str, protocol: str) -> Path:
    return Path(run_dir) / ("eval" if (split, protocol) == ("test", "standard") else f"eval_{split}_{protocol}")


def load_run_embeddings(run_dir: Path, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``user`` (U, d) and ``item`` (I, d) of a complete run."""
    from safetensors.torch import load_file

    require_stage(run_dir, "train")
    tensors = load_file(str(Path(run_dir) / "embeddings.safetensors"), device=str(device))
    if "user" not in tensors or "item" not in tensors:
        raise ArtifactError(f"{run_dir}/embeddings.safetensors lacks the 'user'/'item' tensors; retrain the run")
    return tensors["user"], tensors["item"]


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


def _write_parquet(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Parquet via polars when present, else pyarrow (GPU hosts may have only one of them)."""
    try:
        import polars as pl

        pl.DataFrame(columns).write_parquet(path)
    except ModuleNotFoundError:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), path)


def evaluate(
    run_dir: Path, dataset: Path | InteractionArrays, *, split: Literal["val", "test"] = "test",
    protocol: Literal["standard", "paper"] = "standard", device: str = "cpu", force: bool = False,
) -> dict[str, Any]:
    """Evaluate a run on `split`; writes ``metrics.json`` and ``per_user.parquet``; returns the metrics dict."""
    from ..train.stage import load_dataset

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
    if not force and (out / "metrics.json").is_file() and (out / "_COMPLETE").is_file():
        done = json.loads((out / "metrics.json").read_text())
        if done.get("config_hash") == chash:
            return done
    user, item = load_run_embeddings(run_dir, device)
    users, per_user = per_user_metrics(user, item, arrays, split, protocol)
    result = {
        "run": str(run_dir), "split": split, "protocol": protocol, "config_hash": chash,
        "n_users_evaluated": int(len(users)), "n_users": arrays.n_users, "n_items": arrays.n_items,
        "metrics": summarize({k: torch.from_numpy(v) for k, v in per_user.items()}),
        "selection_split": run_manifest.get("selection_split"), "best_epoch": run_manifest.get("best_epoch"),
    }
    with ArtifactWriter(out, stage="evaluate", config_hash=chash) as w:
        (w.dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        _write_parquet(w.dir / "per_user.parquet", {"user": users.astype(np.int64), **per_user})
        w.manifest.update(run=str(run_dir), split=split, protocol=protocol, n_users=int(len(users)))
    return result


def read_per_user(run_dir: Path, split: str = "test", protocol: str = "standard") -> dict[str, np.ndarray]:
    """Columns of a written ``per_user.parquet`` as numpy arrays."""
    path = eval_dir(run_dir, split, protocol) / "per_user.parquet"
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist; run `python -m llmrec_local.evaluate --run {run_dir}` first")
    try:
        import polars as pl

        frame = pl.read_parquet(path)
        return {c: frame[c].to_numpy() for c in frame.columns}
    except ModuleNotFoundError:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return {c: table[c].to_numpy() for c in table.column_names}
