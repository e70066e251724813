"""Multi-seed runner: train several configs over seeds, evaluate on test, report mean/std and paired tests.

``python -m llmrec_local.run.multiseed --data DATASET --out runs/cmp --models mf lightgcn llmrec
--seeds 0 1 2 --baseline mf [key=value ...]`` trains ``<out>/<name>/seed<k>`` (skipping complete runs), evaluates
each on test with the standard protocol and writes ``<out>/summary.json`` with, per system and metric, the mean and
std over seeds and, against the baseline: a paired test over seeds (pairs = seeds) and one over users (per-user
metric averaged over seeds, pairs = users).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import configure_logging, run_main
from ..config import apply_overrides, from_mapping
from ..errors import ConfigError
from ..evaluate.significance import paired_arrays
from ..train.config import TrainConfig
from ..train.side import SideInputs

log = logging.getLogger(__name__)

REPORT_METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@50", "ndcg@50", "precision@20")


def run_seeds(configs: Mapping[str, TrainConfig], dataset: Path, out: Path, seeds: Sequence[int], *,
              side: SideInputs | None = None) -> dict[str, list[Path]]:
    """Train and evaluate every config for every seed; returns ``{name: [run dir per seed]}``."""
    from ..evaluate.stage import evaluate
    from ..train.stage import train

    runs: dict[str, list[Path]] = {}
    for name, config in configs.items():
        for seed in seeds:
            run = train(replace(config, seed=seed), dataset, Path(out) / name / f"seed{seed}", side=side)
            evaluate(run, dataset, split="test")
            runs.setdefault(name, []).append(run)
    return runs


def summarize_runs(runs: Mapping[str, Sequence[Path]], baseline: str,
                   metrics: Sequence[str] = REPORT_METRICS) -> dict[str, Any]:
    """Mean/std over seeds per system, and paired tests against `baseline` over seeds and over users."""
    from ..artifacts.evaluation import read_per_user

    tables = {name: [read_per_user(r) for r in rs] for name, rs in runs.items()}
    if baseline not in tables:
        raise ValueError(f"baseline {baseline!r} is not one of the systems {sorted(tables)}")
    summary: dict[str, Any] = {"baseline": baseline, "systems": {}}
    for name, ts in tables.items():
        entry: dict[str, Any] = {"seeds": len(ts), "runs": [str(r) for r in runs[name]]}
        for m in metrics:
            per_seed = np.array([t[m].mean() for t in ts])
            entry[m] = {"mean": float(per_seed.mean()), "std": float(per_seed.std(ddof=1)) if len(ts) > 1 else 0.0,
                        "per_seed": per_seed.round(6).tolist()}
            if name != baseline:
                base = tables[baseline]
                base_seed = np.array([t[m].mean() for t in base])
                n = min(len(ts), len(base))
                users_mean = np.mean([t[m] for t in ts], axis=0)
                base_users = np.mean([t[m] for t in base], axis=0)
                if not all(np.array_equal(t["user"], base[0]["user"]) for t in [*ts, *base]):
                    raise ValueError("runs were evaluated on different user sets; use one dataset artifact")
                entry[m]["vs_baseline_over_seeds"] = paired_arrays(per_seed[:n], base_seed[:n])
                entry[m]["vs_baseline_over_users"] = paired_arrays(users_mean, base_users)
        summary["systems"][name] = entry
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmrec_local.run.multiseed", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", nargs="+", default=["mf", "lightgcn", "llmrec"],
                   help="systems: mf, lightgcn, llmrec (= llmrec fixed), llmrec-faithful, llmrec-fixed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--baseline", default="mf")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("overrides", nargs="*", help="key=value TrainConfig settings shared by all systems")
    args = p.parse_args(argv)
    configure_logging(args.verbose)
    base = from_mapping(TrainConfig, apply_overrides({}, args.overrides), "train")
    configs = {}
    for name in args.models:
        model, _, variant = name.partition("-")
        if model not in ("mf", "lightgcn", "llmrec") or variant not in ("", "faithful", "fixed"):
            raise ConfigError(f"unknown system {name!r}; use mf, lightgcn, llmrec, llmrec-faithful or llmrec-fixed")
        try:  # replace() re-runs the range checks of __post_init__ on the combination
            configs[name] = replace(base, model=replace(base.model, name=model, variant=variant or "fixed"))
        except ValueError as exc:
            raise ConfigError(f"system {name!r}: {exc}") from exc
    runs = run_seeds(configs, args.data, args.out, args.seeds)
    summary = summarize_runs(runs, args.baseline)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, entry in summary["systems"].items():
        line = {m: f"{entry[m]['mean']:.4f}±{entry[m]['std']:.4f}" for m in ("recall@20", "ndcg@20")}
        if name != args.baseline:
            line["p_seeds(t)"] = entry["recall@20"]["vs_baseline_over_seeds"]["t_p"]
            line["p_users(wilcoxon)"] = entry["recall@20"]["vs_baseline_over_users"]["wilcoxon_p"]
        print(name, json.dumps(line))
    return 0


if __name__ == "__main__":
    run_main(main)
