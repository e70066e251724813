"""``python -m llmrec_local.tune``: search a run's settings on validation; the best become a tune artifact.

Examples::

    # every tuned run of a recipe (prepare ... embed first when their artifacts are missing)
    python -m llmrec_local.tune --recipe recipes/fair_comparison.toml tune.trials=8 train.epochs=40
    # one TrainConfig on a dataset artifact: --recipe is a TOML file with [train] and [tune] tables (a recipe works)
    python -m llmrec_local.tune --data work/dataset --out work/tune/lightgcn --recipe my_search.toml \\
        train.model.name=lightgcn tune.trials=12 'tune.space.lr={type="log_float", low=1e-4, high=1e-2}'

Then ``python -m llmrec_local.run RECIPE`` trains every seed of a tuned run with the best settings found.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cli import (add_common_args, add_deprecated, add_dry_run, add_overrides, configure_logging, parse_args,
                   print_dry_run, prog, run_main)
from ..config import apply_overrides, dump_toml, load_toml, to_dict
from ..errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.tune"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--recipe", type=Path, metavar="FILE",
                   help="recipe TOML: alone, tune its [tune] runs through the pipeline runner; with --data and --out, "
                        "the file whose [train] table is the base config and whose [tune] table is the search")
    add_deprecated(p, "--config", dest="recipe", new="--recipe", type=Path, metavar="FILE")
    p.add_argument("--data", type=Path, help="dataset artifact folder (a search of one config, with --out)")
    p.add_argument("--out", type=Path, help="tune artifact folder to write (a search of one config, with --data)")
    add_dry_run(p)
    add_overrides(p, None, "tune.trials=8 (without a recipe run: train.* and tune.* keys)")
    add_common_args(p)
    return p


def _standalone(args: argparse.Namespace) -> int:
    from .config import base_config, tune_config

    if args.data is None or args.out is None:
        raise ConfigError("give --recipe, or --data and --out (with --recipe and/or train.*/tune.* overrides)")
    raw: dict[str, Any] = dict(load_toml(args.recipe)) if args.recipe else {}
    unknown = sorted(k.split(".")[0] for k in args.overrides if k.split(".")[0] not in ("train", "tune"))
    if unknown:
        raise ConfigError(f"overrides {unknown}: without --recipe, overrides address train.* or tune.*")
    raw = apply_overrides({"train": raw.get("train", {}), "tune": raw.get("tune", {})}, args.overrides)
    base = base_config(raw["train"])
    config = tune_config(raw["tune"])
    if args.dry_run:
        return print_dry_run(dump_toml({"train": to_dict(base), "tune": to_dict(config)}), {"tune": args.out},
                             reads={"dataset": args.data})
    from ..artifacts.tune import read_best
    from .stage import tune

    out = tune(config, base, args.data, args.out, force=args.force)
    print(json.dumps({"tune": str(out), **read_best(out)}, sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    if args.data is not None or args.out is not None or args.recipe is None:
        return _standalone(args)
    from ..run.config import load_recipe, resolved_toml
    from ..run.stage import STAGES, Layout, run_pipeline

    recipe = load_recipe(args.recipe, args.overrides)
    if recipe.tune is None:
        raise ConfigError(f"recipe {args.recipe} has no [tune] table; add one (see docs/usage.md, 'Tuning')")
    if args.dry_run:
        # Which runs are tuned (and whether their searches are done) is the runner's decision at run time.
        print(resolved_toml(recipe), end="")
        print(f"# recipe hash: {recipe.hash}\n# would run the stages up to tune, writing their artifacts under "
              f"{Layout(recipe.meta.workdir).root} (finished ones are skipped)\n# dry run: nothing was written")
        return 0
    results = run_pipeline(recipe, stages=STAGES[:STAGES.index("tune") + 1], force=args.force)
    for name, found in results.get("tuning", {}).items():
        study = found["study"]
        print(name, json.dumps({"best": study["best"], "counts": study["counts"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_main(main)
