"""Multi-seed runner: train several configs over seeds, evaluate on test, report mean/std and paired tests.

``python -m llmrec_local.run.multiseed --data DATASET --out runs/cmp --models mf lightgcn llmrec
--seeds 0 1 2 --baseline mf [key=value ...]`` trains ``<out>/<name>/seed<k>`` (skipping complete runs), evaluates
each on test with the standard protocol and writes ``<out>/summary.json`` with, per system and metric, the mean and
std over seeds and, against the baseline: a paired test over seeds (pairs = seeds) and one over users (per-user
metric averaged over seeds, pairs = users). Training and evaluation go through the pipeline runner
(`llmrec_local.run.stage.run_seeds`); the statistics are `llmrec_local.run.summary`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..cli import configure_logging, run_main
from ..config import apply_overrides, from_mapping
from ..errors import ConfigError
from ..train.config import TrainConfig
from .stage import run_seeds
from .summary import summarize_runs


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmrec_local.run.multiseed", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder (python -m llmrec_local.prepare)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: OUT/<system>/seed<k>/ per run, OUT/summary.json with the paired tests")
    p.add_argument("--models", nargs="+", default=["mf", "lightgcn", "llmrec"],
                   help="systems: mf, lightgcn, sgl, simgcl, llmrec (= llmrec fixed), llmrec-faithful, llmrec-fixed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds, one run per system and seed (default: 0 1 2)")
    p.add_argument("--baseline", default="mf",
                   help="system the others are tested against, paired over seeds and over users (default: mf)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("overrides", nargs="*", help="key=value TrainConfig settings shared by all systems")
    args = p.parse_args(argv)
    configure_logging(args.verbose)
    base = from_mapping(TrainConfig, apply_overrides({}, args.overrides), "train")
    configs = {}
    for name in args.models:
        model, _, variant = name.partition("-")
        if model not in ("mf", "lightgcn", "sgl", "simgcl", "llmrec") or variant not in ("", "faithful", "fixed") or (
                variant and model != "llmrec"):
            raise ConfigError(f"unknown system {name!r}; use mf, lightgcn, sgl, simgcl, llmrec, llmrec-faithful or "
                              "llmrec-fixed")
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
