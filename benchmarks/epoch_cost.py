"""Seconds per training epoch and per validation pass by batch size: the figures behind the recipes' ``batch_size``
and ``eval_every`` (written beside them) and behind the trainer's wall-time estimate.

Data: a prepared dataset artifact, or ``--synthetic NAME``: arrays the size of a dataset the recipes train on (Zipf
item popularity, heavy-tailed history lengths >= 5, per-user 70/10/20 split), since those datasets cannot be shipped:

* ``ml1m``: MovieLens-1M after the recipes' filters (6,040 users, 3,706 items, about 575,000 positives);
* ``netflix``: LLMRec's Netflix release (13,187 users, 17,366 items, 98,476 positives: 68,933 training pairs as in
  the release);
* ``ml10m``: MovieLens-10M after rating >= 4 and 5-cores (69,878 users, 10,677 items; about 5,000,000 positives,
  an estimate from ML-10M's share of ratings >= 4, not a count).
 For each batch size the trainer's own pieces (`make_model`, `make_optimizer`,
`TripleSampler`, the ranking of `evaluate`) run ``--steps`` training steps after two warm-up steps; an epoch is
``n_train // batch_size + 1`` steps (the trainer's schedule), so ``epoch_s = median step time x steps``. Timing steps
rather than whole epochs keeps the measurement short on a shared machine, and the median resists the other jobs'
bursts. One validation pass (embeddings + full ranking of the validation users) is timed ``--evals`` times (median).

Prints progress to stderr and, as its LAST stdout line, one JSON object ``{"data", "model", "device", "threads",
"results": [{"batch_size", "setting", "steps_per_epoch", "step_s", "epoch_s", "eval_s", "eval_every_auto",
"eval_every_measured", "hours_300_epochs_eval_every_2"}]}``: ``eval_every_auto`` is what ``train.eval_every = "auto"``
gives (an operation estimate, `llmrec_local.train.sizing`), ``eval_every_measured`` what the same bound (validation at
most a quarter of training time) gives from the measured seconds: where they differ, the rule is off on this device.

    python benchmarks/epoch_cost.py work/ml-small --model lightgcn --batch-sizes 1024 4096 8192
    python benchmarks/epoch_cost.py --synthetic ml1m --model lightgcn --batch-sizes 1024 4096 8192 --steps 5
    python benchmarks/epoch_cost.py --synthetic netflix --model mf --batch-sizes 1024 auto
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {"ml1m": {"n_users": 6_040, "n_items": 3_706, "positives": 575_281},
         "netflix": {"n_users": 13_187, "n_items": 17_366, "positives": 98_476},
         "ml10m": {"n_users": 69_878, "n_items": 10_677, "positives": 5_000_000}}


def synthetic(name: str, seed: int = 0):  # type: ignore[no-untyped-def]
    """InteractionArrays of the size of `name` (:data:`SIZES`), split 70/10/20 per user."""
    from llmrec_local.data.arrays import InteractionArrays

    rng = np.random.default_rng(seed)
    n_users, n_items, total = SIZES[name]["n_users"], SIZES[name]["n_items"], SIZES[name]["positives"]
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity /= popularity.sum()
    # Heavy-tailed history lengths (>= 5, as after the 5-core) summing to about `total`.
    lengths = np.maximum(5, rng.lognormal(0.0, 1.0, n_users))
    lengths = np.minimum(np.round(lengths * total / lengths.sum()).astype(int), n_items // 2)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for user, n in enumerate(lengths):
        # Gumbel top-n: n distinct items drawn by popularity, as rng.choice(replace=False, p=...) but vectorised.
        items = np.argpartition(np.log(popularity) - np.log(-np.log(rng.random(n_items))), -n)[-n:]
        n_test, n_val = max(1, round(0.2 * n)), max(1, round(0.1 * n))
        for name, chunk in (("test", items[:n_test]), ("val", items[n_test:n_test + n_val]),
                            ("train", items[n_test + n_val:])):
            parts[name].append(np.stack([np.full(len(chunk), user), chunk], 1))
    pairs = {k: np.concatenate(v).astype(np.int64) for k, v in parts.items()}
    return InteractionArrays.from_pairs(n_users, n_items, pairs["train"], pairs["val"], pairs["test"])


def _median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", nargs="?", type=Path, help="a prepared dataset artifact folder")
    p.add_argument("--synthetic", choices=sorted(SIZES), help="synthetic arrays of that dataset's size instead of a dataset")
    p.add_argument("--model", default="lightgcn", choices=["mf", "lightgcn", "sgl", "simgcl"])
    p.add_argument("--batch-sizes", nargs="+", default=["1024", "4096", "8192"],
                   help='batch sizes to time; "auto" = what train.batch_size = "auto" gives for this data')
    p.add_argument("--steps", type=int, default=10, help="timed training steps per batch size")
    p.add_argument("--evals", type=int, default=3, help="timed validation passes")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if (args.dataset is None) == (args.synthetic is None):
        p.error(f"give a dataset folder or --synthetic {{{','.join(sorted(SIZES))}}} (one of them)")
    import torch

    from llmrec_local.artifacts.dataset import load_dataset
    from llmrec_local.evaluate.ranking import PairIndex, rank_and_score
    from llmrec_local.train import ModelConfig, TrainConfig
    from llmrec_local.train.sampling import TripleSampler
    from llmrec_local.train.side import SideArrays
    from llmrec_local.train.sizing import auto_batch_size, auto_eval_every, operation_counts, propagation_layers
    from llmrec_local.train.stage import make_model, make_optimizer

    data = synthetic(args.synthetic) if args.synthetic else load_dataset(args.dataset)[0]
    print(f"{data.n_users:,} users, {data.n_items:,} items, {len(data.train):,} training pairs, "
          f"{torch.get_num_threads()} torch threads", file=sys.stderr)
    device = torch.device(args.device)
    results = []
    for choice in args.batch_sizes:
        if choice != "auto" and not choice.isdigit():
            p.error(f"--batch-sizes: {choice!r} is neither a positive integer nor auto")
        batch_size = auto_batch_size(len(data.train)) if choice == "auto" else int(choice)
        config = TrainConfig(model=ModelConfig(name=args.model), batch_size=batch_size, device=args.device)
        model = make_model(config, data, SideArrays(None, None, {}, None, None, {}), device)
        optimizer = make_optimizer(model, config.lr, model.default_weight_decay)
        generator = torch.Generator(device=device)
        generator.manual_seed(0)
        sampler = TripleSampler(data.train, data.n_users, data.n_items, generator, None)

        def step() -> None:
            model.train()
            loss, _ = model.loss(sampler.sample(batch_size), generator=generator, training=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        def validate() -> None:
            model.eval()
            with torch.no_grad():
                user, item = model.embeddings()
            truth = PairIndex.build(data.val, data.n_users, data.n_items, device)
            rank_and_score(user, item, truth, [PairIndex.build(data.train, data.n_users, data.n_items, device)])

        _median_time(step, 2)  # warm-up: allocations, kernel selection
        step_s = _median_time(step, args.steps)
        eval_s = _median_time(validate, args.evals)
        steps = sampler.steps_per_epoch(batch_size)
        epoch_s = step_s * steps
        # eval_every = "auto" (the operation estimate) beside what the measured times would give under the same
        # bound (validation at most a quarter of training): the check of the rule on this data and device.
        counts = operation_counts(n_users=data.n_users, n_items=data.n_items, n_train=len(data.train),
                                  n_eval_users=len(np.unique(data.val[:, 0])), batch_size=batch_size,
                                  dim=config.model.dim, layers=propagation_layers(config))
        row = {"batch_size": batch_size, "setting": choice, "steps_per_epoch": steps, "step_s": round(step_s, 4),
               "epoch_s": round(epoch_s, 1), "eval_s": round(eval_s, 2),
               "eval_every_auto": auto_eval_every(counts["evaluation_per_epoch"], config.patience),
               "eval_every_measured": auto_eval_every(eval_s / epoch_s, config.patience),
               "hours_300_epochs_eval_every_2": round((300 * epoch_s + 150 * eval_s) / 3600, 2)}
        print(json.dumps(row), file=sys.stderr)
        results.append(row)
    print(json.dumps({"data": args.synthetic or str(args.dataset), "model": args.model, "device": args.device,
                      "threads": torch.get_num_threads(), "steps": args.steps, "results": results}))


if __name__ == "__main__":
    main()
