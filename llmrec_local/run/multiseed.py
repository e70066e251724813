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

from ..cli import (add_dry_run, add_overrides, add_recipe, configure_logging, parse_args, print_dry_run, run_main,
                   would_write)
from ..config import apply_overrides, dump_toml, from_mapping, load_toml, to_dict
from ..errors import ConfigError
from ..train.config import TrainConfig
from .stage import run_seeds
from .summary import summarize_runs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llmrec_local.run.multiseed", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder (python -m llmrec_local.prepare)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: OUT/<system>/seed<k>/ per run, OUT/summary.json with the paired tests")
    add_recipe(p, "train", note=" (a file without one is read whole)")
    p.add_argument("--models", nargs="+", default=["mf", "lightgcn", "llmrec"],
                   help="systems: mf, lightgcn, sgl, simgcl, llmrec (= llmrec fixed), llmrec-faithful, llmrec-fixed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds, one run per system and seed (default: 0 1 2)")
    p.add_argument("--baseline", default="mf",
                   help="system the others are tested against, paired over seeds and over users (default: mf)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (= progress=false)")
    add_dry_run(p)
    add_overrides(p, "train", "epochs=50 model.dim=128 (shared by all systems)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    table: dict = {}
    if args.recipe:
        raw = load_toml(args.recipe)
        table = dict(raw.get("train", raw))
    flags = ["progress=false"] if args.no_progress else []
    base = from_mapping(TrainConfig, apply_overrides(table, [*flags, *args.overrides]), "train")
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
    if args.dry_run:
        writes = {f"{name} seed {seed}": would_write(args.out / name / f"seed{seed}")
                  for name in configs for seed in args.seeds}
        writes["summary"] = str(args.out / "summary.json")
        return print_dry_run(dump_toml({name: to_dict(config) for name, config in configs.items()}), writes,
                             reads={"dataset": args.data})
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
