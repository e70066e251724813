"""Multi-seed runner: train several systems over seeds on a prepared dataset, evaluate on test, report mean/std
and paired tests; side inputs (free text, LLM augmentations) and shuffle controls included.

``python -m llmrec_local.run.multiseed --data DATASET --out runs/cmp --models mf lightgcn llmrec --seeds 0 1 2
--baseline mf [key=value ...]`` builds a study (a recipe without ``[prepare]``) and hands it to the pipeline runner
(`llmrec_local.run.stage.run_pipeline`) on the given dataset, so every kind of run a recipe can hold can be run
here: ``--side item_text user_text`` gives the LLMRec systems side inputs (``--item-text FILE`` / ``--user-text
FILE``: free text as id,text tables, embedded into ``OUT/embed``; ``--augment DIR``: pairs, attributes and profiles
made earlier), ``--shuffle item_text`` adds a twin ``<system>-shuffled`` of every system with side inputs whose
named inputs are deranged across entities (the content control). Runs land in ``OUT/runs/<system>-seed<k>/``
(complete runs are skipped), the report in ``OUT/report/`` and ``OUT/summary.json`` holds, per system and metric,
the mean and std over seeds and, against the baseline: a paired test over seeds (pairs = seeds) and one over users
(per-user metric averaged over seeds, pairs = users); the statistics are `llmrec_local.run.summary`.

Overrides: ``key=value`` sets a training setting of every system (``epochs=20``, ``model.dim=32``);
``embed.key=value`` an embed setting (``embed.item_text_file.id_column=movieId``, ``embed.text_model=...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cli import (add_dry_run, add_overrides, add_recipe, configure_logging, print_dry_run, prog, run_main,
                   would_write)
from ..config import apply_overrides, from_mapping, load_toml
from ..errors import ConfigError
from .config import EMBEDDED_INPUTS, SIDE_INPUTS, Recipe, RecipeMeta, RunSpec

SYSTEMS = ("mf", "lightgcn", "sgl", "simgcl", "llmrec", "llmrec-faithful", "llmrec-fixed")
SHUFFLED_SUFFIX = "-shuffled"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.run.multiseed"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder (python -m llmrec_local.prepare)")
    p.add_argument("--out", type=Path, required=True,
                   help="study folder: OUT/runs/<system>-seed<k>/, OUT/embed/, OUT/report/, OUT/summary.json")
    add_recipe(p, "train", note=" (a file without one is read whole), shared by all systems")
    p.add_argument("--models", nargs="+", default=["mf", "lightgcn", "llmrec"],
                   help="systems: mf, lightgcn, sgl, simgcl, llmrec (= llmrec fixed), llmrec-faithful, llmrec-fixed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds, one run per system and seed (default: 0 1 2)")
    p.add_argument("--baseline", default="mf",
                   help="system the others are tested against, paired over seeds and over users (default: mf); "
                        "with --shuffle e.g. llmrec-shuffled")
    p.add_argument("--side", nargs="+", default=[], choices=SIDE_INPUTS, metavar="INPUT",
                   help=f"side inputs of the llmrec systems, from {', '.join(SIDE_INPUTS)}")
    p.add_argument("--shuffle", nargs="+", default=[], choices=SIDE_INPUTS, metavar="INPUT",
                   help="add a twin <system>-shuffled of each llmrec system with these side inputs deranged across "
                        "entities (seeded per seed): the real-vs-shuffled control")
    p.add_argument("--item-text", type=Path, default=None,
                   help="free item text: CSV/TSV/parquet/JSON with columns id,text (ids as the dataset's item ids; "
                        "other names: embed.item_text_file.id_column=... / .text_column=...)")
    p.add_argument("--user-text", type=Path, default=None, help="free user text, as --item-text")
    p.add_argument("--augment", type=Path, default=None,
                   help="augmentation folder (pairs, item_attributes, user_profiles) for those side inputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (= progress=false)")
    add_dry_run(p)
    add_overrides(p, "train", "epochs=50 model.dim=128 (shared by all systems; embed.KEY=VALUE sets an [embed] "
                              "setting)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``key=value`` words are overrides wherever they stand (a list option such as --seeds
    would otherwise swallow them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    args = build_parser().parse_args([a for a in argv if a not in overrides])
    args.overrides = [*args.overrides, *overrides]  # after those of a deprecated --set
    return args


def _embed_table(args: argparse.Namespace, embed_overrides: Sequence[str]) -> dict[str, Any] | None:
    """The [embed] table of the study: the embedded sources the side inputs need, the free-text files."""
    sources = [s for s in EMBEDDED_INPUTS if s in args.side]
    if args.item_text is not None and "item_text" not in args.side:
        raise ConfigError("--item-text is given but item_text is not in --side; add --side item_text")
    if args.user_text is not None and "user_text" not in args.side:
        raise ConfigError("--user-text is given but user_text is not in --side; add --side user_text")
    if "user_text" in args.side and args.user_text is None:
        raise ConfigError("--side user_text needs --user-text FILE (a table of user id, text)")
    if not sources:
        return None
    table: dict[str, Any] = {"sources": sources}
    for name, file in (("item_text_file", args.item_text), ("user_text_file", args.user_text)):
        if file is not None:
            table[name] = {"path": str(file)}
    return apply_overrides(table, embed_overrides)


def build_study(args: argparse.Namespace) -> Recipe:
    """The study as a recipe without [prepare]: one run per system (and shuffled twin), the embed table."""
    from ..embed.config import EmbedConfig
    from ..train.config import TrainConfig

    embed_overrides = [o[len("embed."):] for o in args.overrides if o.startswith("embed.")]
    train_overrides = [o for o in args.overrides if not o.startswith("embed.")]
    table: dict[str, Any] = {}
    if args.recipe:
        raw = load_toml(args.recipe)
        table = dict(raw.get("train", raw))
    flags = ["progress=false"] if args.no_progress else []
    base = from_mapping(TrainConfig, apply_overrides(table, [*flags, *train_overrides]), "train")
    if set(args.side) & {"pairs", "item_attributes", "user_profiles"} and args.augment is None:
        raise ConfigError(f"--side {' '.join(args.side)} needs the augmentation folder: --augment DIR")
    if not set(args.shuffle) <= set(args.side):
        raise ConfigError(f"--shuffle {' '.join(args.shuffle)}: only side inputs of the runs can be shuffled "
                          f"(--side {' '.join(args.side) or '(none)'})")
    runs = []
    for name in args.models:
        if name not in SYSTEMS:
            raise ConfigError(f"unknown system {name!r}; use {', '.join(SYSTEMS)}")
        model, _, variant = name.partition("-")
        try:  # replace() re-runs the range checks of __post_init__ on the combination
            config = replace(base, model=replace(base.model, name=model, variant=variant or "fixed"))
        except ValueError as exc:
            raise ConfigError(f"system {name!r}: {exc}") from exc
        side = tuple(args.side) if model == "llmrec" else ()
        runs.append(RunSpec(name=name, train=config, side=side))
        if side and args.shuffle:
            runs.append(RunSpec(name=name + SHUFFLED_SUFFIX, train=config, side=side, shuffle=tuple(args.shuffle)))
    if args.baseline not in {r.name for r in runs}:
        raise ConfigError(f"--baseline {args.baseline!r} is not one of the systems {[r.name for r in runs]}")
    if args.side and not any(r.side for r in runs):
        raise ConfigError("--side is given but no llmrec system is in --models; only LLMRec uses side inputs")
    table = _embed_table(args, embed_overrides)
    if table is None and embed_overrides:
        raise ConfigError(f"{embed_overrides[0]!r}: embed settings need side inputs to embed (--side item_text ...)")
    embed = from_mapping(EmbedConfig, table, "embed") if table is not None else None
    meta = RecipeMeta(name=f"multiseed: {', '.join(r.name for r in runs)}", workdir=args.out,
                      seeds=tuple(args.seeds), baseline=args.baseline)
    return Recipe(meta, None, None, None, embed, tuple(runs))


def main(argv: Sequence[str] | None = None) -> int:
    from .config import resolved_toml
    from .stage import Layout, run_pipeline
    from .summary import summarize_runs

    args = parse_args(argv)
    configure_logging(args.verbose)
    study = build_study(args)
    layout = Layout(args.out, dataset=args.data)
    if args.dry_run:
        writes = {f"{r.name} seed {seed}": would_write(layout.run(r.name, seed)) for r in study.runs
                  for seed in args.seeds}
        writes["summary"] = str(args.out / "summary.json")
        reads = {"dataset": args.data, **({"augment": args.augment} if args.augment else {})}
        return print_dry_run(resolved_toml(study), writes, config_hash=study.hash, reads=reads)
    run_pipeline(study, stages=("embed", "train", "evaluate", "report"), dataset=args.data, augment=args.augment,
                 progress=False)
    runs = {r.name: [layout.run(r.name, seed) for seed in args.seeds] for r in study.runs}
    summary = summarize_runs(runs, args.baseline)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, entry in summary["systems"].items():
        line = {m: f"{entry[m]['mean']:.4f}±{entry[m]['std']:.4f}" for m in ("recall@20", "ndcg@20")}
        if name != args.baseline:
            line["diff_recall@20"] = f"{entry['recall@20']['vs_baseline_over_seeds']['mean_diff']:+.4f}"
            line["p_seeds(t)"] = entry["recall@20"]["vs_baseline_over_seeds"]["t_p"]
            line["p_users(wilcoxon)"] = entry["recall@20"]["vs_baseline_over_users"]["wilcoxon_p"]
        print(name, json.dumps(line))
    return 0


if __name__ == "__main__":
    run_main(main)
