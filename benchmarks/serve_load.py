"""Load test of the recommendation service (``python -m serving.recommend_server``) on 127.0.0.1.

With no arguments it builds a small trained run on the bundled MovieLens ml-latest-small (prepare + LightGCN, a few
epochs, under ``artifacts/bench-serve/``; both stages are skipped when already complete), starts the service as a
subprocess on a free port, waits for ``/health``, sends a bounded number of requests from a few threads, and stops
the service by its PID. ``--run RUN_DIR`` serves an existing run instead (its dataset from the manifest or ``--data``).

Request mix (seeded): 70% ``GET /users/{id}/recommendations`` for a random known user, 15% ``POST
/recommendations/batch`` with ``--batch-users`` random users, 15% ``POST /recommendations/fold-in`` with a history of
``--history`` random items. Latency is measured per request on the client (connection reused per thread); a
request counts as an error when it raises or answers anything but 200.

Prints progress to stderr and, as its LAST stdout line, one JSON object:
``{"requests_per_s", "p50_ms", "p99_ms", "errors", ...}``.

    python benchmarks/serve_load.py
    python benchmarks/serve_load.py --requests 5000 --threads 8
    python benchmarks/serve_load.py --run artifacts/quickstart/runs/lightgcn-s0
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from serving.recommend_server import launch, stop

REPO_ROOT = Path(__file__).resolve().parents[1]
MIX = (("user", 0.70), ("batch", 0.15), ("fold_in", 0.15))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_run(source: Path, workdir: Path, epochs: int) -> tuple[Path, Path]:
    """Prepare `source` (MovieLens layout) and train a LightGCN on it; returns (run_dir, dataset_dir)."""
    from llmrec_local.prepare.config import PrepareConfig
    from llmrec_local.prepare.stage import prepare
    from llmrec_local.train.config import ModelConfig, TrainConfig
    from llmrec_local.train.stage import train

    dataset = prepare(PrepareConfig(source=source, format="movielens", min_rating=4.0, split="random", seed=0),
                      workdir / "dataset")
    config = TrainConfig(model=ModelConfig(name="lightgcn", dim=64, n_layers=2), epochs=epochs, batch_size=1024,
                         lr=0.005, seed=0)
    run = train(config, dataset, workdir / "runs" / "lightgcn")
    return run, dataset


def plan_requests(n: int, user_ids: list[str], item_ids: list[str], k: int, batch_users: int, history: int,
                  seed: int) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """`n` requests as (kind, method, path, json body), drawn from MIX with a seeded generator."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice([m[0] for m in MIX], size=n, p=[m[1] for m in MIX])
    plan: list[tuple[str, str, str, dict[str, Any] | None]] = []
    for kind in kinds:
        if kind == "user":
            plan.append((kind, "GET", f"/users/{user_ids[rng.integers(len(user_ids))]}/recommendations?k={k}", None))
        elif kind == "batch":
            users = [user_ids[j] for j in rng.integers(len(user_ids), size=batch_users)]
            plan.append((kind, "POST", "/recommendations/batch", {"users": users, "k": k}))
        else:
            items = [item_ids[j] for j in rng.choice(len(item_ids), size=history, replace=False)]
            plan.append((kind, "POST", "/recommendations/fold-in", {"items": items, "k": k}))
    return plan


def run_load(url: str, plan: list[tuple[str, str, str, dict[str, Any] | None]], threads: int
             ) -> tuple[np.ndarray, int, float]:
    """Send `plan` from `threads` threads; returns (latencies in ms of all requests, error count, wall seconds)."""
    latencies = np.zeros(len(plan))
    errors = [0] * threads
    next_index = iter(range(len(plan)))
    lock = threading.Lock()

    def worker(slot: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                _, method, path, body = plan[i]
                t0 = time.perf_counter()
                try:
                    ok = client.request(method, path, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[i] = (time.perf_counter() - t0) * 1000.0
                errors[slot] += not ok

    pool = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, sum(errors), time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, default=None, help="serve this finished run (default: build one)")
    p.add_argument("--data", type=Path, default=None, help="dataset artifact of --run (default: from its manifest)")
    p.add_argument("--source", type=Path, default=REPO_ROOT / "data" / "ml-latest-small",
                   help="raw MovieLens folder for the built run")
    p.add_argument("--workdir", type=Path, default=REPO_ROOT / "artifacts" / "bench-serve",
                   help="where the built dataset, run and server log go")
    p.add_argument("--epochs", type=int, default=5, help="LightGCN epochs of the built run")
    p.add_argument("--requests", type=int, default=2000, help="measured requests (after --warmup)")
    p.add_argument("--warmup", type=int, default=50, help="unmeasured requests first")
    p.add_argument("--threads", type=int, default=4, help="client threads")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch-users", type=int, default=8, help="users per batch request")
    p.add_argument("--history", type=int, default=5, help="items per fold-in history")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for /health")
    args = p.parse_args()
    if args.requests < 1 or args.threads < 1:
        p.error("--requests and --threads must be >= 1")

    from llmrec_local.artifacts.dataset import Dataset

    if args.run is None:
        log(f"building a LightGCN run on {args.source} under {args.workdir} ({args.epochs} epochs)")
        run, data = build_run(args.source, args.workdir, args.epochs)
    else:
        run, data = args.run, args.data
    manifest = json.loads((run / "manifest.json").read_text())
    dataset = Dataset.load(data if data is not None else manifest["dataset"]["path"])
    user_ids = dataset.users()["user_id"].to_list()
    item_ids = dataset.items()["item_id"].to_list()
    plan = plan_requests(args.warmup + args.requests, user_ids, item_ids, args.k, args.batch_users, args.history,
                         args.seed)

    extra = ["--no-access-log", *(["--data", str(data)] if data is not None else [])]
    try:
        proc, url = launch(run, args.workdir / "server.log", extra=extra, timeout_s=args.startup_timeout)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from exc
    log(f"service pid {proc.pid} at {url}; {args.requests} requests from {args.threads} threads")
    try:
        model = httpx.get(f"{url}/model", timeout=10).json()
        run_load(url, plan[: args.warmup], min(args.threads, max(args.warmup, 1)))
        latencies, errors, wall = run_load(url, plan[args.warmup:], args.threads)
    finally:
        stop(proc)
    kinds = [kind for kind, *_ in plan[args.warmup:]]
    result = {
        "requests": args.requests, "threads": args.threads, "wall_s": round(wall, 3),
        "requests_per_s": round(args.requests / wall, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p90_ms": round(float(np.percentile(latencies, 90)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "max_ms": round(float(latencies.max()), 2), "errors": errors,
        "mix": {name: kinds.count(name) for name, _ in MIX}, "k": args.k, "batch_users": args.batch_users,
        "history": args.history, "model": model.get("model"), "dim": model.get("dim"),
        "n_users": model.get("n_users"), "n_items": model.get("n_items"), "run": str(run),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
