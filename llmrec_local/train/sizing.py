"""``batch_size = "auto"`` and ``eval_every = "auto"``: the batch size and evaluation interval sized to the dataset.

Both are resolved at the start of a run by a fixed rule of the dataset's sizes and the model's shape, never by timing,
so a run is reproducible: the same dataset and config give the same values on any machine. The literal ``"auto"``
is what the config hash covers (the values follow from it and the dataset, which the run hash also covers); the
resolved values are logged and recorded in the run manifest (``sizing``).

**Batch size.** A LightGCN-family step propagates the whole graph whatever the batch, so at a fixed batch an
epoch costs ``steps x graph`` with both factors growing with the training pairs ``n``: quadratic in the dataset.
Fixing the steps per epoch instead makes an epoch's cost linear in the graph::

    batch_size = clamp(2 ** round(log2(n / TARGET_STEPS)), MIN_BATCH, MAX_BATCH)

with :data:`TARGET_STEPS` = 100 (the measured ML-1M choice: batch 4096 = 100 steps, the same test Recall@20 as 1024
once the learning rate is scaled with the batch; recipes/README.md, "Costs"). Small datasets keep the default 1024
(:data:`MIN_BATCH`: ml-latest-small and LLMRec's Netflix release give 1024). The learning rate is NOT changed: a
larger batch makes fewer updates per epoch, so scale ``train.lr`` with it (the ML-1M recipe uses 4096 / 0.004).

**Evaluation interval.** The smallest interval at which validation costs at most :data:`EVAL_SHARE` (a quarter) of
the training time by an operation-count estimate (d = model dim, L = propagation layers, U / I users / items, V
users with a pair in the selection split, B the batch, ``steps = n // B + 1``)::

    train_epoch = steps x (6·L·2n·d  +  30·B·d  +  10·(U + I)·d)     propagation fwd+bwd, BPR on the batch, AdamW
    evaluation  = 2·L·2n·d  +  V·I·(2d + 16) / GEMM_SPEEDUP           one propagation, scoring + masking + top-k
    eval_every  = clamp(ceil(evaluation / (EVAL_SHARE x train_epoch)), 1, min(MAX_EVAL_EVERY, max(1, patience // 2)))

The scoring is one dense matrix product, which runs faster per operation than a training step's sparse and
element-wise work: :data:`GEMM_SPEEDUP` = 4 is the middle of what benchmarks/epoch_cost.py measured on CPU (2.4 to
5.8; on a GPU the product is relatively cheaper still, so the rule then errs towards evaluating less often than
needed, never more). The cap keeps at least two evaluations within the early-stopping patience. LLMRec's extra
work (feature projections, augmented triples) is not counted: its epochs cost more than estimated, so for LLMRec the
interval errs long; give LLMRec runs an explicit ``eval_every`` (a Netflix-scale LLMRec validation costs 0.17 of an
epoch on CPU and 0.02 on an H200, docs/results.md: every epoch is cheap there).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from ..data.arrays import InteractionArrays
from .config import TrainConfig

log = logging.getLogger(__name__)

#: steps per epoch the automatic batch size aims at
TARGET_STEPS = 100
#: smallest automatic batch (the default batch size: small datasets are not changed)
MIN_BATCH = 1024
#: largest automatic batch
MAX_BATCH = 65536
#: the largest share of training time validation may take
EVAL_SHARE = 0.25
#: the longest automatic evaluation interval
MAX_EVAL_EVERY = 10
#: how many times faster per operation the scoring matrix product runs than a training step's work (module docstring)
GEMM_SPEEDUP = 4.0


def auto_batch_size(n_train: int) -> int:
    """The batch giving about :data:`TARGET_STEPS` steps per epoch for `n_train` training pairs (a power of two in
    [:data:`MIN_BATCH`, :data:`MAX_BATCH`])."""
    exponent = round(math.log2(max(n_train, 1) / TARGET_STEPS)) if n_train > TARGET_STEPS else 0
    return int(min(MAX_BATCH, max(MIN_BATCH, 2 ** exponent)))


def propagation_layers(config: TrainConfig) -> int:
    """Graph propagation layers of the model: 0 for MF, ``n_layers`` for LightGCN/SGL/SimGCL, ``id_layers`` for
    LLMRec."""
    name = config.model.name
    if name == "mf":
        return 0
    return config.model.id_layers if name == "llmrec" else config.model.n_layers


def operation_counts(*, n_users: int, n_items: int, n_train: int, n_eval_users: int, batch_size: int, dim: int,
                     layers: int) -> dict[str, float]:
    """Estimated operations of one training epoch and one evaluation (module docstring), plus their ratio."""
    steps = n_train // batch_size + 1
    nnz = 2 * n_train  # the symmetric user-item adjacency
    step = 6 * layers * nnz * dim + 30 * batch_size * dim + 10 * (n_users + n_items) * dim
    train_epoch = float(steps * step)
    evaluation = 2 * layers * nnz * dim + n_eval_users * n_items * (2 * dim + 16) / GEMM_SPEEDUP
    return {"train_epoch_ops": train_epoch, "evaluation_ops": float(evaluation),
            "evaluation_per_epoch": evaluation / train_epoch}


def auto_eval_every(ratio: float, patience: int) -> int:
    """The smallest interval whose validation costs at most :data:`EVAL_SHARE` of training, for an evaluation that
    costs `ratio` training epochs; capped at :data:`MAX_EVAL_EVERY` and at half the patience."""
    cap = min(MAX_EVAL_EVERY, max(1, patience // 2))
    return int(min(cap, max(1, math.ceil(ratio / EVAL_SHARE - 1e-9))))


def resolve_sizes(config: TrainConfig, arrays: InteractionArrays,
                  select_split: str | None) -> tuple[TrainConfig, dict[str, Any] | None]:
    """`config` with ``"auto"`` batch size / evaluation interval replaced by their values for `arrays`, and the
    record of how (None when neither is "auto")."""
    if config.batch_size != "auto" and config.eval_every != "auto":
        return config, None
    n_train = int(len(arrays.train))
    batch = auto_batch_size(n_train) if config.batch_size == "auto" else int(config.batch_size)
    eval_pairs = {"val": arrays.val, "test": arrays.test}.get(select_split or "", None)
    n_eval_users = int(len(np.unique(eval_pairs[:, 0]))) if eval_pairs is not None and len(eval_pairs) else 0
    counts = operation_counts(n_users=arrays.n_users, n_items=arrays.n_items, n_train=n_train,
                              n_eval_users=n_eval_users, batch_size=batch, dim=config.model.dim,
                              layers=propagation_layers(config))
    every = (auto_eval_every(counts["evaluation_per_epoch"], config.patience) if config.eval_every == "auto"
             else int(config.eval_every))
    record = {"batch_size": {"setting": config.batch_size, "value": batch, "steps_per_epoch": n_train // batch + 1},
              "eval_every": {"setting": config.eval_every, "value": every},
              "inputs": {"users": arrays.n_users, "items": arrays.n_items, "train_pairs": n_train,
                         "eval_users": n_eval_users, "dim": config.model.dim, "layers": propagation_layers(config)},
              "estimate": {k: round(v, 4) if k == "evaluation_per_epoch" else float(f"{v:.4g}")
                           for k, v in counts.items()},
              "rule": {"target_steps": TARGET_STEPS, "min_batch": MIN_BATCH, "max_batch": MAX_BATCH,
                       "eval_share": EVAL_SHARE, "max_eval_every": MAX_EVAL_EVERY, "gemm_speedup": GEMM_SPEEDUP}}
    log.info("sized to the dataset (%d users, %d items, %d training pairs): batch_size %s -> %d (%d steps per "
             "epoch), eval_every %s -> %d (an evaluation ~ %.2f training epochs by the operation estimate)",
             arrays.n_users, arrays.n_items, n_train, config.batch_size, batch, n_train // batch + 1,
             config.eval_every, every, counts["evaluation_per_epoch"])
    if config.batch_size == "auto" and batch > MIN_BATCH:
        log.info("batch_size auto gave %d (> %d): train.lr (%g) is not scaled with it; a larger batch makes fewer "
                 "updates per epoch (the ML-1M recipe pairs batch 4096 with lr 0.004)", batch, MIN_BATCH, config.lr)
    return dataclasses.replace(config, batch_size=batch, eval_every=every), record
