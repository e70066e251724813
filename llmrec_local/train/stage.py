"""The ``train`` stage: fit one recommender on a dataset artifact and write a run artifact.

Run artifact (``runs/<run_id>/``): ``config.json`` (resolved train + model config), ``model.safetensors`` (state dict of
the selected epoch), ``embeddings.safetensors`` (``user`` (U, d), ``item`` (I, d), score = user . item),
``train_log.jsonl`` (one line per epoch: loss parts, validation metrics, time), ``manifest.json`` (dataset path and
config hash, side inputs, best epoch and its metrics) and ``_COMPLETE``.

Resume: the run is staged in ``.<run_id>.partial`` with a checkpoint (model, optimiser, sampling generator, early
stopping state) written after every epoch; rerunning the same command with the same config continues from it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..artifacts.base import ArtifactWriter, reusable
from ..artifacts.dataset import load_dataset
from ..artifacts.run import RunStaging
from ..config import to_dict
from ..data.arrays import InteractionArrays
from ..errors import ConfigError, DataError
from ..evaluate.ranking import PairIndex, rank_and_score, summarize
from ..hashing import stable_hash
from ..models import Recommender, build_model
from ..seeding import derive_seed
from .compiled import TrainStep
from .config import TrainConfig, selection_mode, train_config_hash
from .costs import CostEstimator
from .heap import retained_heap
from .init_from import apply_init_from
from .sampling import TripleSampler
from .side import SideArrays, SideInputs, resolve_side, side_digests
from .sizing import resolve_sizes
from .stopping import EarlyStopping

log = logging.getLogger(__name__)


def make_model(config: TrainConfig, arrays: InteractionArrays, side: SideArrays, device: torch.device) -> Recommender:
    """Build the configured model on `device`, seeded, with the side features it can use."""
    torch.manual_seed(derive_seed(config.seed, "init"))
    kwargs = config.model.model_kwargs()
    if config.model.name == "llmrec":
        kwargs.update(item_text=side.item_text, item_image=side.item_image,
                      item_attributes=side.item_attributes or None, user_profiles=side.user_profiles)
    model = build_model(config.model.name, n_users=arrays.n_users, n_items=arrays.n_items, train=arrays.train,
                        device=device, **kwargs)
    if config.model.init_from:
        apply_init_from(model, config.model.init_from, side, config.seed)
    return model


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over all parameters, fused into one kernel per step where torch supports it (float32 on CPU or CUDA).

    Why fused: the per-parameter update is a handful of elementwise passes over the (U + I) x d ID tables; the fused
    kernel does them in one pass and took a Netflix-scale LLMRec step on 2 CPU cores from 101 to 90 ms. It is the
    same update rule (equal up to float rounding).
    """
    params = list(model.parameters())
    fused = all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def _selection_split(config: TrainConfig, arrays: InteractionArrays, dataset: str) -> str | None:
    """The split the model is selected on ("val" | "test"), or None for ``selection = "last"``; DataError when the
    selection needs validation pairs and `dataset` has none (a run must never fall back to "last" silently)."""
    mode = selection_mode(config)
    if mode == "last":
        return None
    if mode == "val" and not len(arrays.val):
        raise DataError(
            f"dataset {dataset} has no validation pairs, but train.selection={config.selection!r} (protocol "
            f"{config.protocol!r}) selects the model on validation; prepare the dataset with validation (a given split: "
            f"--val-from-train, e.g. 5, recipe key prepare.val_from_train; the other splits: val_ratio > 0), or set "
            f"train.selection = 'last' to keep the last epoch (no model selection, no early stopping)"
        )
    return mode  # "test" is the original's rule (E1), paper protocol only: reported as such


def _evaluate_split(model: Recommender, arrays: InteractionArrays, split: str, config: TrainConfig,
                    device: torch.device) -> dict[str, float]:
    """Mean metrics on `split` with train items masked (and validation items when testing, standard protocol)."""
    model.eval()
    with torch.no_grad():
        user, item = model.embeddings()
    truth = PairIndex.build(getattr(arrays, split), arrays.n_users, arrays.n_items, device)
    exclude = [PairIndex.build(arrays.train, arrays.n_users, arrays.n_items, device)]
    if split == "test" and config.protocol == "standard" and len(arrays.val):
        exclude.append(PairIndex.build(arrays.val, arrays.n_users, arrays.n_items, device))
    _, per_user = rank_and_score(user, item, truth, exclude, chunk=config.eval_chunk,
                                 with_paper_ndcg=config.protocol == "paper")
    return summarize(per_user)


def train(
    config: TrainConfig, dataset: Path | InteractionArrays, out: Path, *, side: SideInputs | None = None,
    force: bool = False, on_evaluation: Callable[[int, Mapping[str, float]], None] | None = None,
) -> Path:
    """Train `config` on `dataset`, writing the run artifact at `out` (skipped if complete for the same config).

    Args:
        config: training + model settings.
        dataset: a dataset artifact folder (or already-built InteractionArrays).
        out: run folder to create.
        side: optional side inputs (LLMRec only).
        force: rebuild even if a complete run for this config exists.
        on_evaluation: called as ``on_evaluation(epoch, metrics)`` after each evaluation on the selection split,
            once the epoch's checkpoint is saved (validation tuning reports to its pruner here; an exception it
            raises stops the run, which stays unpublished). Not part of the config.
    Returns:
        `out`.
    """
    out = Path(out)
    arrays, dataset_path, dataset_info = load_dataset(dataset)
    if len(arrays.train) == 0:
        raise DataError(f"dataset {dataset_info['path']} has no training pairs; check its split")
    select_split = _selection_split(config, arrays, dataset_info["path"] or "(in-memory arrays)")
    side_arrays = resolve_side(side, dataset_path, arrays.n_users, arrays.n_items)
    if config.model.name != "llmrec" and not config.model.init_from and (
            side_arrays.description or (side and side.pairs is not None)):
        log.info("model %s ignores side features; only LLM pairs (if any) are used", config.model.name)
    run_hash = stable_hash({"train": train_config_hash(config), "dataset": dataset_info["config_hash"],
                            "side": side_arrays.description})
    # Provenance: the dataset's and side artifacts' content, so that a run trained before `prepare --force` (or a
    # rebuilt embedding) is never reused; kept out of run_hash so that config hashes stay what they were.
    inputs = {"dataset": dataset_info["content_digest"], **side_digests(side)}
    if reusable(out, "train", run_hash, force=force, inputs=inputs):
        log.info("run %s is complete for this config (hash %s); skipping", out, run_hash)
        return out
    # "auto" sizes are resolved here, after hashing: the hash covers the literal, the manifest the values.
    config, sizing = resolve_sizes(config, arrays, select_split)
    try:
        device = torch.device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available")
    except RuntimeError as exc:
        raise ConfigError(f"train.device={config.device!r} is not usable here ({exc}); use device='cpu'") from exc

    t_start = time.perf_counter()
    model = make_model(config, arrays, side_arrays, device)
    wd = model.default_weight_decay if config.weight_decay is None else config.weight_decay
    optimizer = make_optimizer(model, config.lr, wd)
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(config.seed, "sampling"))
    sampler = TripleSampler(arrays.train, arrays.n_users, arrays.n_items, generator, side_arrays.pairs)
    step = TrainStep(model, optimizer, sampler, batch_size=config.batch_size, aug_sample_rate=config.aug_sample_rate,
                     noise_rate=config.noise_rate, compile=config.compile)
    steps = sampler.steps_per_epoch(config.batch_size)
    selection = {"setting": config.selection, "mode": selection_mode(config), "split": select_split,
                 "metric": config.select_metric if select_split else None}
    log.info("%s: model selection %s", out, f"on {select_split} ({config.select_metric}, every {config.eval_every} "
             f"epoch(s))" if select_split else "off: the last epoch is kept (selection='last')")
    costs = CostEstimator(config.epochs, config.eval_every, select_split is not None, str(device), str(out))
    resolved = {"train": to_dict(config), "model_kwargs": {k: v for k, v in config.model.model_kwargs().items()},
                "weight_decay": wd, "steps_per_epoch": steps, "selection_split": select_split}

    # retained_heap: the step's large temporaries reuse the previous step's pages instead of new ones (train/heap.py)
    with ArtifactWriter(out, stage="train", config_hash=run_hash, resume=True, inputs=inputs) as w, \
            retained_heap(device.type == "cpu" and config.heap == "retained"):
        stopping = EarlyStopping(config.patience, config.min_epochs, config.smoothing, config.min_delta)
        state: dict[str, Any] = {"epoch": 0, "best_metrics": {}, "stopping": stopping.to_dict()}
        files = RunStaging(w.dir)
        ckpt = files.load_checkpoint(device)
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            generator.set_state(ckpt["generator"].cpu() if device.type == "cpu" else ckpt["generator"])
            state = ckpt["state"]
            stopping = EarlyStopping.from_dict(state["stopping"])
            log.info("resuming %s after epoch %d", out, state["epoch"])
        files.restart_log(state["epoch"])

        bar = tqdm(range(state["epoch"], config.epochs), initial=state["epoch"], total=config.epochs,
                   desc=f"train {config.model.name}", disable=not config.progress, leave=False)
        for epoch in bar:
            if stopping.stopped:
                break
            model.train()
            t0 = time.perf_counter()
            sums: dict[str, float] = {}
            for _ in range(steps):
                loss, parts = step()
                sums["loss"] = sums.get("loss", 0.0) + float(loss)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
            if not math.isfinite(sums["loss"]):
                raise DataError(f"training diverged at epoch {epoch + 1} (loss {sums['loss']}); lower train.lr")
            record: dict[str, Any] = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()},
                                      "train_s": round(time.perf_counter() - t0, 3)}
            if select_split and (epoch + 1) % config.eval_every == 0:
                t1 = time.perf_counter()
                metrics = _evaluate_split(model, arrays, select_split, config, device)
                record[select_split] = metrics
                record["eval_s"] = round(time.perf_counter() - t1, 3)
                score = metrics[config.select_metric]
                if stopping.observe(epoch + 1, score):
                    state["best_metrics"] = metrics
                    files.save_best(model.state_dict())
                state["stopping"] = stopping.to_dict()
                bar.set_postfix(loss=f"{record['loss']:.4f}", **{config.select_metric: f"{score:.4f}"})
            else:
                bar.set_postfix(loss=f"{record['loss']:.4f}")
            files.append_log(record)
            costs.update(epoch + 1, record["train_s"], record.get("eval_s"))
            state["epoch"] = epoch + 1
            files.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "generator": generator.get_state(), "state": state})
            if on_evaluation is not None and select_split in record:
                on_evaluation(epoch + 1, record[select_split])
        bar.close()

        best = files.load_best(device) if select_split else None
        best_epoch = stopping.best_epoch
        if best is not None:
            model.load_state_dict(best)
        else:  # no selection split: the last epoch is the model
            best_epoch = state["epoch"]
        stop = {"reason": "patience" if stopping.stopped else "epoch_cap" if select_split else "no_selection_split",
                "last_improvement_epoch": stopping.last_improvement or None,
                "still_improving": bool(select_split) and stopping.still_improving()}
        if stop["still_improving"]:
            # A run cut by its cap while the validation curve still rose reports a model short of its best.
            log.warning("%s: still improving at the epoch cap: the validation curve last improved at epoch %d of %d, "
                        "within the patience of %d epochs, so early stopping had not decided; the model may be "
                        "undertrained: raise train.epochs", out, stopping.last_improvement, state["epoch"],
                        config.patience)
        model.eval()
        with torch.no_grad():
            user, item = model.embeddings()
        files.finish(w.manifest, user, item, model.state_dict(), resolved)
        w.manifest.update(
            dataset=dataset_info, side_inputs=side_arrays.description, seed=config.seed, model=config.model.name,
            variant=config.model.variant if config.model.name == "llmrec" else None,
            best_epoch=best_epoch, epochs_run=state["epoch"], stopping=stop, selection_split=select_split,
            selection=selection, cost_estimate=costs.record, **({"sizing": sizing} if sizing else {}),
            select_metric=config.select_metric, val_metrics=state["best_metrics"], protocol=config.protocol,
            counts={"users": arrays.n_users, "items": arrays.n_items, "train": int(len(arrays.train)),
                    "llm_pairs": 0 if side_arrays.pairs is None else int(len(side_arrays.pairs)),
                    "llm_pairs_invalid": sampler.n_invalid_aug},
            train_wall_s=round(time.perf_counter() - t_start, 3), device=str(device),
        )
    return out
