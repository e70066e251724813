"""Run artifacts (stage ``train``): one trained recommender, its final representations and its training log.

Layout of ``runs/<run_id>/``:
    config.json             resolved train + model config (sorted keys)
    model.safetensors       state dict of the selected epoch
    embeddings.safetensors  ``user`` (U, d) and ``item`` (I, d) float32, score(u, i) = user[u] . item[i]
    train_log.jsonl         one JSON line per epoch: loss parts, validation metrics, timings
    manifest.json           dataset path and config hash, side inputs, best epoch and its metrics

While a run trains, its staging folder (``.<run_id>.partial``, see `ArtifactWriter(resume=True)`) also holds
``checkpoint.pt`` (model, optimiser, sampling generator, early-stopping state after the last finished epoch) and
``best_state.pt`` (state dict of the best epoch so far); both are removed before the run is published.

torch and safetensors are imported inside the functions that need them: the serving and candidate readers work
on numpy alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArtifactError
from .base import COMPLETE_MARKER, check_kind, read_manifest, require_stage, stamp_kind

if TYPE_CHECKING:
    import torch

STAGE = "train"
KIND = "run"
SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
EMBEDDINGS_FILE = "embeddings.safetensors"
LOG_FILE = "train_log.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best_state.pt"


def _atomic_save(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so a kill mid-write never leaves a truncated checkpoint."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class RunStaging:
    """The files of a run while it trains, inside its ArtifactWriter staging folder `folder` (``w.dir``)."""

    def __init__(self, folder: Path) -> None:
        self.dir = Path(folder)

    def load_checkpoint(self, device: "torch.device") -> dict[str, Any] | None:
        """The last checkpoint (keys model, optimizer, generator, state), or None when training starts afresh."""
        import torch

        path = self.dir / CHECKPOINT_FILE
        return torch.load(path, map_location=device, weights_only=True) if path.is_file() else None

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write the state after a finished epoch (what `load_checkpoint` returns on resume)."""
        _atomic_save(checkpoint, self.dir / CHECKPOINT_FILE)

    def save_best(self, state_dict: dict[str, "torch.Tensor"]) -> None:
        """Keep the model state of the best epoch so far."""
        _atomic_save(state_dict, self.dir / BEST_FILE)

    def load_best(self, device: "torch.device") -> dict[str, "torch.Tensor"] | None:
        """The best epoch's state dict, or None when no epoch was selected (no selection split)."""
        import torch

        path = self.dir / BEST_FILE
        return torch.load(path, map_location=device, weights_only=True) if path.is_file() else None

    def restart_log(self, epochs_done: int) -> None:
        """Keep the log lines of the first `epochs_done` epochs (those the checkpoint covers; a line written after
        the last checkpoint is dropped, its epoch reruns) or start an empty log when `epochs_done` is 0."""
        path = self.dir / LOG_FILE
        lines = path.read_text().splitlines()[:epochs_done] if epochs_done and path.is_file() else []
        path.write_text("".join(line + "\n" for line in lines))

    def append_log(self, record: dict[str, Any]) -> None:
        """Append one epoch's record as a JSON line."""
        with (self.dir / LOG_FILE).open("a") as f:
            f.write(json.dumps(record) + "\n")

    def finish(self, manifest: dict[str, Any], user: "torch.Tensor", item: "torch.Tensor",
               state_dict: dict[str, "torch.Tensor"], resolved: dict[str, Any]) -> None:
        """Write the published files and drop the resume files.

        Args:
            manifest: the ArtifactWriter's manifest (stamped with this kind's layout version).
            user: (U, d), item: (I, d) final representations (stored as float32 on the CPU).
            state_dict: the selected model's parameters and buffers; resolved: the config.json content.
        """
        from safetensors.torch import save_file

        save_file({"user": user.detach().float().cpu().contiguous(), "item": item.detach().float().cpu().contiguous()},
                  str(self.dir / EMBEDDINGS_FILE))
        save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(self.dir / MODEL_FILE))
        (self.dir / CONFIG_FILE).write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")
        (self.dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        (self.dir / BEST_FILE).unlink(missing_ok=True)
        stamp_kind(manifest, KIND, SCHEMA_VERSION)


def embeddings_path(run_dir: str | Path) -> Path:
    """Path of a run's embeddings file (for hashing it into a downstream manifest)."""
    return Path(run_dir) / EMBEDDINGS_FILE


def read_run_embeddings(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``user`` (U, d) and ``item`` (I, d) of a run's embeddings file, as numpy arrays in their stored dtype.

    Reads only the file (no manifest check: callers that need a complete run call `require_stage` first), so a
    bare embeddings file written elsewhere also works. ArtifactError naming the file when it is missing,
    unreadable or lacks either tensor.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = embeddings_path(run_dir)
    if not path.is_file():
        raise ArtifactError(f"{run_dir} has no {EMBEDDINGS_FILE}; pass a finished training run (runs/<run_id>/, "
                            "written by `python -m llmrec_local.train`)")
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ArtifactError(f"cannot read {path} ({exc}); retrain the run") from exc
    if "user" not in tensors or "item" not in tensors:
        raise ArtifactError(f"{path} lacks the 'user'/'item' tensors (has {sorted(tensors)}); retrain the run")
    return tensors["user"], tensors["item"]


def load_run_embeddings(run_dir: str | Path, device: "str | torch.device" = "cpu") -> tuple["torch.Tensor",
                                                                                            "torch.Tensor"]:
    """``user`` (U, d) and ``item`` (I, d) of a complete run, as torch tensors on `device`."""
    from safetensors.torch import load_file

    check_kind(run_dir, require_stage(run_dir, STAGE), KIND, SCHEMA_VERSION)
    path = embeddings_path(run_dir)
    tensors = load_file(str(path), device=str(device))
    if "user" not in tensors or "item" not in tensors:
        raise ArtifactError(f"{path} lacks the 'user'/'item' tensors; retrain the run")
    return tensors["user"], tensors["item"]


def read_train_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run's training log, oldest first; empty when the run has no log."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def find_runs(root: str | Path) -> list[Path]:
    """Every complete run folder at or below `root` (a recipe workdir, a multi-seed output), sorted; staging
    folders (``.<name>.partial``) and the other kinds of artifacts are left out."""
    root = Path(root)
    found = []
    for marker in sorted(root.rglob(COMPLETE_MARKER)):
        folder = marker.parent
        if any(part.startswith(".") for part in folder.relative_to(root).parts):
            continue
        manifest = read_manifest(folder)
        if manifest.get("stage") == STAGE:
            check_kind(folder, manifest, KIND, SCHEMA_VERSION)
            found.append(folder)
    return found
