"""Training and full-ranking evaluation speed of the LLMRec model at Netflix scale (synthetic data).

Data: 13,187 users, 17,366 items, 68,933 unique training edges (item popularity ~ Zipf, so a long tail of items has
no training edge, as in the real Netflix subset), one test item per user; features 512-d image, 768-d text, 1536-d
user profile and five 1536-d item-attribute fields (random unit vectors); one LLM triple per user; batches of 1024
users plus 10% LLM triples (the original's schedule: n_train // 1024 + 1 steps per epoch).

The floor (benchmarks/step_floor.py): the matrix products (GEMMs and SpMMs) of a few eager steps are recorded with
their shapes, each is timed alone on this machine, and their summed time is the step's floor; ``floor_s`` is that
times the steps of an epoch and ``floor_ratio = epoch_s / floor_s``. The products are re-timed after every epoch and
each epoch is divided by the floor measured beside it, so that load from other processes on a shared machine inflates
both sides alike; ``floor_ratio`` is the median of those per-epoch ratios. The table of timed products (shape,
calls per step, GFLOP, ms, GFLOP/s) goes to stderr, so the ratio can be checked by hand.

The traffic (also benchmarks/step_floor.py): the rows a step gathers from the model's constant feature tables and the
optimizer's fused update, timed alone the same way (GB, ms, GB/s in the same table). ``bound_s`` = floor + traffic per
epoch and ``bound_ratio = epoch_s / bound_s``: how far the step is from doing nothing but its products and its
compulsory memory passes.

Prints progress to stderr and, as its LAST stdout line, one JSON object:
``{"epoch_s": median seconds per epoch, "floor_s": ..., "floor_ratio": ..., "bound_s": ..., "bound_ratio": ...,
"gather_ms", "update_ms" (per step), "ops_per_step" (CPU) or
"launches_per_step" (CUDA): ..., "eval_s": seconds for embeddings + full ranking of all test users,
"peak_rss_mb": ..., "minor_faults_per_step": fresh pages the kernel handed out per timed step, "heap": ``retained``
(the trainer's malloc setting on a CPU, llmrec_local.train.heap) or ``default`` (``--heap default``), "device": ...,
"compile": ..., ...}``.

    python benchmarks/train_speed.py                 # CPU, 3 epochs, eager
    python benchmarks/train_speed.py --compile default           # the same step through torch.compile
    python benchmarks/train_speed.py --compile reduce-overhead   # the static step (fixed shapes), compiled whole
    python benchmarks/train_speed.py --device cuda --epochs 5 --compile reduce-overhead   # ... as CUDA graphs

``--compile reduce-overhead`` runs the static step (llmrec_local.train.compiled: padded batches, the loss compiled
as one graph with ``fullgraph=True``; on CUDA replayed as CUDA graphs); the JSON says ``"static": true``. The floor is
always that of the eager step's products: the static step projects every batch row (N user rows, 2N item rows) instead
of the distinct warm nodes (about 1,000 + 1,070 here), about 1.6x the eager step's GEMM FLOPs, which shows in its
``floor_ratio`` on the CPU.
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
from step_floor import count_ops, floor_summary, product_table, profiled, record_products, time_products

from llmrec_local.train.heap import retained_heap

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


def minor_faults() -> int:
    """Page faults of this process served without I/O so far: mostly fresh pages handed out by the kernel."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def profile_steps(n: int, step, device: torch.device) -> None:  # type: ignore[no-untyped-def]
    """Run ``n`` training steps under torch.profiler; print the operators with the most self time (device time on
    CUDA, host time on CPU) and the host time per step to stderr."""
    prof = profiled(step, device, n)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25), file=sys.stderr)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--variant", choices=["faithful", "fixed"], default="faithful")
    p.add_argument("--mae", action="store_true", help="fixed variant with the MAE on (mask_rate 0.2)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="after timing, profile this many steps and print the top operators to stderr")
    p.add_argument("--compile", choices=["off", "default", "reduce-overhead"], default="off",
                   help="train.compile: run the step's loss eagerly (off), through torch.compile (default), or the "
                        "static step compiled whole (reduce-overhead; CUDA graphs on CUDA)")
    p.add_argument("--floor-steps", type=int, default=3, help="eager steps whose matrix products are recorded")
    p.add_argument("--steps", type=int, default=0,
                   help="time this many steps per epoch and scale to a full epoch (0 = whole epochs; for a machine "
                        "too loaded to run full epochs; the JSON says timed_steps)")
    p.add_argument("--heap", choices=["retained", "default"], default="retained",
                   help="glibc malloc as the trainer sets it on the CPU (retained: freed memory stays in the heap, "
                        "llmrec_local.train.heap) or its defaults (a step's large temporaries come as new pages)")
    return p.parse_args()


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Build the model, time the epochs, the floor and the evaluation: the JSON result."""
    if args.threads:
        torch.set_num_threads(args.threads)
    from llmrec_local.evaluate.ranking import PairIndex, rank_and_score
    from llmrec_local.models import build_model
    from llmrec_local.train import TripleSampler, make_optimizer
    from llmrec_local.train.compiled import TrainStep

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
    # The trainer's step (llmrec_local.train.compiled), and its eager twin on the same model for the floor.
    step = TrainStep(model, opt, sampler, batch_size=1024, aug_sample_rate=0.1, compile=args.compile)
    eager = TrainStep(model, opt, sampler, batch_size=1024, aug_sample_rate=0.1)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    # the propagated feature tables (2-D and up; not the 1-D bias coefficients and node slots)
    products = record_products(eager, args.floor_steps, [b for b in model.buffers() if b.dim() >= 2])
    compile_s = 0.0
    if args.compile != "off":
        # compile, recompile with dynamic sizes, and (CUDA graphs) record: outside the timed epochs
        if device.type == "cpu":
            from torch._inductor import config as inductor_config

            inductor_config.cpp.enable_kernel_profile = True  # compiled kernels visible to count_ops
        sync()
        t0 = time.perf_counter()
        for _ in range(3):
            step()
        sync()
        compile_s = time.perf_counter() - t0
        print(f"compile ({args.compile}) and 3 warm-up steps {compile_s:.1f}s", file=sys.stderr)
    counts = count_ops(step, device)

    epoch_times, floor_times, bound_times = [], [], []
    timed = min(args.steps, steps) if args.steps else steps
    faults = 0
    for epoch in range(args.epochs):
        sync()
        t0, f0 = time.perf_counter(), minor_faults()
        for _ in range(timed):
            loss, _ = step()
        sync()
        epoch_times.append((time.perf_counter() - t0) * steps / timed)
        faults += minor_faults() - f0
        time_products(products, device)  # beside each epoch: the same load on both sides of the ratio
        floor = floor_summary(products, args.floor_steps)
        floor_times.append(floor["floor_step_s"] * steps)
        bound_times.append(floor["bound_step_s"] * steps)
        print(f"epoch {epoch + 1}: {epoch_times[-1]:.2f}s, loss {float(loss):.4f}, floor {floor_times[-1]:.2f}s, "
              f"ratio {epoch_times[-1] / floor_times[-1]:.2f}, bound (+ traffic) {bound_times[-1]:.2f}s, "
              f"ratio {epoch_times[-1] / bound_times[-1]:.2f}", file=sys.stderr)
    print(f"matrix products and traffic of one step (recorded over {args.floor_steps} eager steps; FLOPs 2MKN per "
          f"GEMM, 2*nnz*N per SpMM; bytes read + written; times of the last re-timing):\n"
          f"{product_table(products, args.floor_steps)}", file=sys.stderr)
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
        "epoch_s": round(statistics.median(epoch_times), 3), "floor_s": round(statistics.median(floor_times), 3),
        "floor_ratio": round(statistics.median(e / f for e, f in zip(epoch_times, floor_times)), 3),
        "bound_s": round(statistics.median(bound_times), 3),
        "bound_ratio": round(statistics.median(e / b for e, b in zip(epoch_times, bound_times)), 3),
        "compile": args.compile, "static": step.static, "compile_s": round(compile_s, 1),
        **{k: round(v, 1) for k, v in counts.items()},
        "gflop_per_step": round(floor["gemm_gflop_per_step"] + floor["spmm_gflop_per_step"], 3),
        **{k: round(floor[k], 3 if "_per_step" in k else 1) for k in (
            "gemm_gflop_per_step", "gemm_gflops", "gemm_floor_ms", "spmm_gflop_per_step", "spmm_gflops",
            "spmm_floor_ms", "gather_gb_per_step", "gather_ms", "gather_gbps", "update_gb_per_step", "update_ms",
            "update_gbps")},
        "floor_times_s": [round(t, 3) for t in floor_times], "eval_s": round(eval_times[-1], 3),
        "minor_faults_per_step": round(faults / (args.epochs * timed)),
        "peak_rss_mb": round(peak_rss_mb(), 1), "device": str(device),
        "epochs": args.epochs, "steps_per_epoch": steps, "timed_steps": timed,
        "epoch_times_s": [round(t, 3) for t in epoch_times],
        "build_s": round(build_s, 2), "variant": args.variant, "mae": args.mae,
        "threads": torch.get_num_threads(), "eval_users": int(len(users)),
        "recall@20": round(float(per_user["recall@20"].mean()), 5),
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main() -> None:
    args = parse_args()
    # as the train stage does: the retained heap for training on the CPU only
    with retained_heap(args.heap == "retained" and torch.device(args.device).type == "cpu") as held:
        result = measure(args)
    print(json.dumps({**result, "heap": "retained" if held else "default"}))


if __name__ == "__main__":
    main()
