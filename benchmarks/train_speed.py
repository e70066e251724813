"""Training and full-ranking evaluation speed of the LLMRec model at Netflix scale (synthetic data).

Data: 13,187 users, 17,366 items, 68,933 unique training edges (item popularity ~ Zipf, so a long tail of items has
no training edge, as in the real Netflix subset), one test item per user; features 512-d image, 768-d text, 1536-d
user profile and five 1536-d item-attribute fields (random unit vectors); one LLM triple per user; batches of 1024
users plus 10% LLM triples (the original's schedule: n_train // 1024 + 1 steps per epoch).

Prints progress to stderr and, as its LAST stdout line, one JSON object:
``{"epoch_s": median seconds per epoch, "eval_s": seconds for embeddings + full ranking of all test users,
"peak_rss_mb": ..., "device": ..., ...}``.

    python benchmarks/train_speed.py                 # CPU, 3 epochs
    python benchmarks/train_speed.py --device cuda --epochs 5
    python benchmarks/train_speed.py --epochs 1 --profile 10   # then the top operators of 10 profiled steps
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import numpy as np
import torch

N_USERS, N_ITEMS, N_EDGES = 13_187, 17_366, 68_933


def synthetic(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.1
    weights /= weights.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < N_EDGES + N_USERS:
        u = rng.integers(0, N_USERS, 2 * N_EDGES)
        i = rng.choice(N_ITEMS, 2 * N_EDGES, p=weights)
        keys = np.unique(np.concatenate([keys, u * N_ITEMS + i]))
    keys = rng.permutation(keys)
    pairs = np.stack([keys // N_ITEMS, keys % N_ITEMS], 1)
    train, rest = pairs[:N_EDGES], pairs[N_EDGES:]
    _, first = np.unique(rest[:, 0], return_index=True)
    test = rest[first]

    def unit(n: int, d: int) -> np.ndarray:
        x = rng.standard_normal((n, d), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    aug = np.stack([np.arange(N_USERS), rng.integers(0, N_ITEMS, N_USERS), rng.integers(0, N_ITEMS, N_USERS)], 1)
    return {"train": train, "test": test, "image": unit(N_ITEMS, 512), "text": unit(N_ITEMS, 768),
            "profile": unit(N_USERS, 1536), **{f"attr{k}": unit(N_ITEMS, 1536) for k in range(5)}, "aug": aug}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def profile_steps(n: int, step, device: torch.device) -> None:  # type: ignore[no-untyped-def]
    """Run ``n`` training steps under torch.profiler; print the operators with the most self time (device time on
    CUDA, host time on CPU) and the host time per step to stderr."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(n):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25), file=sys.stderr)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--variant", choices=["faithful", "fixed"], default="faithful")
    p.add_argument("--mae", action="store_true", help="fixed variant with the MAE on (mask_rate 0.2)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="after timing, profile this many steps and print the top operators to stderr")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from llmrec_local.evaluate.ranking import PairIndex, rank_and_score
    from llmrec_local.models import build_model
    from llmrec_local.train import TripleSampler, make_optimizer

    device = torch.device(args.device)
    t0 = time.perf_counter()
    d = synthetic()
    print(f"data {time.perf_counter() - t0:.1f}s; items without a training edge: "
          f"{1 - len(np.unique(d['train'][:, 1])) / N_ITEMS:.1%}", file=sys.stderr)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    extra = {"mask_rate": 0.2, "mae_weight": 0.1} if args.mae else {}
    model = build_model(
        "llmrec", n_users=N_USERS, n_items=N_ITEMS, train=d["train"], device=device, variant=args.variant,
        item_image=d.pop("image"), item_text=d.pop("text"), user_profiles=d.pop("profile"),
        item_attributes={f"field{k}": d.pop(f"attr{k}") for k in range(5)}, **extra,
    )
    build_s = time.perf_counter() - t0
    print(f"model build (feature propagation) {build_s:.1f}s", file=sys.stderr)
    opt = make_optimizer(model, 1e-4, model.default_weight_decay)
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    sampler = TripleSampler(d["train"], N_USERS, N_ITEMS, gen, d["aug"])
    steps = sampler.steps_per_epoch(1024)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step() -> torch.Tensor:
        batch = sampler.sample(1024, aug_sample_rate=0.1)
        loss, _ = model.loss(batch, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    epoch_times = []
    for epoch in range(args.epochs):
        model.train()
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        sync()
        epoch_times.append(time.perf_counter() - t0)
        print(f"epoch {epoch + 1}: {epoch_times[-1]:.2f}s, loss {float(loss.detach()):.4f}", file=sys.stderr)
    if args.profile:
        profile_steps(args.profile, step, device)
    truth = PairIndex.build(d["test"], N_USERS, N_ITEMS, device)
    exclude = [PairIndex.build(d["train"], N_USERS, N_ITEMS, device)]
    eval_times = []
    for _ in range(2):  # the first call warms up kernels/allocations; report the second
        model.eval()
        sync()
        t0 = time.perf_counter()
        user, item = model.embeddings()
        users, per_user = rank_and_score(user, item, truth, exclude)
        sync()
        eval_times.append(time.perf_counter() - t0)
    result = {
        "epoch_s": round(statistics.median(epoch_times), 3), "eval_s": round(eval_times[-1], 3),
        "peak_rss_mb": round(peak_rss_mb(), 1), "device": str(device),
        "epochs": args.epochs, "steps_per_epoch": steps, "epoch_times_s": [round(t, 3) for t in epoch_times],
        "build_s": round(build_s, 2), "variant": args.variant, "mae": args.mae,
        "threads": torch.get_num_threads(), "eval_users": int(len(users)),
        "recall@20": round(float(per_user["recall@20"].mean()), 5),
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
