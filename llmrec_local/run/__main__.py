"""``python -m llmrec_local.run RECIPE.toml``: run a recipe from raw data to a report.

Examples:
    python -m llmrec_local.run recipes/quickstart.toml
    python -m llmrec_local.run recipes/quickstart.toml --dry-run train.epochs=5
    python -m llmrec_local.run recipes/quickstart.toml --from train --until evaluate
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from ..cli import add_common_args, add_dry_run, add_overrides, configure_logging, parse_args, prog, run_main
from .config import load_recipe, resolved_toml
from .stage import STAGES, Layout, run_pipeline, select_stages


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.run"), description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("recipe", type=Path, help="recipe TOML file (see recipes/README.md)")
    add_overrides(p, None, "train.epochs=5 recipe.seeds=[0]")
    add_dry_run(p)
    p.add_argument("--from", dest="start", choices=STAGES, help="first stage to run (earlier artifacts must exist)")
    p.add_argument("--until", choices=STAGES, help="last stage to run")
    p.add_argument("--models-dir", help="folder of local models (default: the recipe's recipe.models_dir)")
    p.add_argument("--base-url", help="OpenAI-compatible server for augment.backend = 'openai'")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    add_common_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    recipe = load_recipe(args.recipe, args.overrides)
    stages = select_stages(args.start, args.until)
    if args.dry_run:
        # The runner's own skip rule decides per stage at run time (it needs the inputs' content); here: where.
        print(resolved_toml(recipe), end="")
        print(f"# recipe hash: {recipe.hash}\n# would run the stages {', '.join(stages)}, writing their artifacts "
              f"under {Layout(recipe.meta.workdir).root} (finished ones are skipped)\n# dry run: nothing was written")
        return 0
    results = run_pipeline(recipe, stages=stages, force=args.force, models_dir=args.models_dir,
                           base_url=args.base_url, progress=not args.no_progress)
    _print_headline(results)
    return 0


def _print_headline(results: dict) -> None:
    from ..report.stage import summarise_runs

    print(f"\n== {results['recipe']} (recipe hash {results['config_hash']}) ==")
    total = sum(s["wall_s"] or 0 for s in results["stages"])
    print(f"stages: {len(results['stages'])}, total {total:.1f} s")
    for row in summarise_runs(results["runs"]):
        r20, n20 = row.get("recall@20", (float("nan"),) * 2), row.get("ndcg@20", (float("nan"),) * 2)
        print(f"  {row['name']:<22} recall@20 {r20[0]:.4f} ± {r20[1]:.4f}   ndcg@20 {n20[0]:.4f} ± {n20[1]:.4f}"
              f"   ({len(row['seeds'])} seeds)")
    for comp in results["comparisons"]:
        if comp["test"].endswith("users"):
            p = "n/a" if comp["p_value"] is None else f"{comp['p_value']:.3g}"
            print(f"  {comp['run']} vs {comp['baseline']} {comp['metric']}: {comp['mean_diff']:+.4f} (p = {p}, "
                  f"{comp['test']})")
    for path in results.get("report_paths", []):
        print(f"report: {Path(path).resolve()}")


if __name__ == "__main__":
    logging.captureWarnings(True)
    run_main(main)
