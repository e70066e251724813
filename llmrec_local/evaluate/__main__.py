"""``python -m llmrec_local.evaluate``: full-ranking metrics of trained runs, optionally compared pairwise.

Examples::

    python -m llmrec_local.evaluate --run runs/llmrec --data data/ml
    python -m llmrec_local.evaluate --run runs/llmrec --data data/ml --protocol paper
    python -m llmrec_local.evaluate --run runs/llmrec --data data/ml --compare runs/mf runs/lightgcn
    python -m llmrec_local.evaluate --run runs/llmrec --data data/ml --dry-run
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..cli import add_common_args, add_dry_run, configure_logging, print_dry_run, prog, run_main, would_write


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.evaluate"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder (from llmrec_local.train)")
    p.add_argument("--data", type=Path, required=True, help="the dataset artifact the run was trained on")
    p.add_argument("--split", choices=["test", "val"], default="test", help="split whose held-out items are ranked")
    p.add_argument("--protocol", choices=["standard", "paper"], default="standard",
                   help="paper: mask train items only and add the original's NDCG variant")
    p.add_argument("--compare", type=Path, nargs="*", default=[],
                   help="baseline runs: paired t-test and Wilcoxon over per-user metrics against --run")
    p.add_argument("--metric", default="recall@20", help="metric compared with --compare (default recall@20)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... for the full ranking")
    add_dry_run(p)
    add_common_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    from ..artifacts.evaluation import eval_dir, read_per_user
    from .significance import paired_tests
    if args.dry_run:
        from ..config import dump_toml

        settings = {"split": args.split, "protocol": args.protocol, "device": args.device}
        if args.compare:
            settings["metric"] = args.metric
        runs = [args.run, *args.compare]
        return print_dry_run(dump_toml({"evaluate": settings}),
                             {f"evaluation of {run}": would_write(eval_dir(run, args.split, args.protocol))
                              for run in runs},
                             reads={"dataset": args.data, "run": args.run,
                                    **{f"baseline {i}": run for i, run in enumerate(args.compare, 1)}})
    from .stage import evaluate

    result = evaluate(args.run, args.data, split=args.split, protocol=args.protocol, device=args.device,
                      force=args.force)
    out = {"run": str(args.run), "metrics": result["metrics"], "n_users_evaluated": result["n_users_evaluated"]}
    if args.compare:
        mine = read_per_user(args.run, args.split, args.protocol)
        out["compare"] = {}
        for base in args.compare:
            evaluate(base, args.data, split=args.split, protocol=args.protocol, device=args.device)
            other = read_per_user(base, args.split, args.protocol)
            out["compare"][str(base)] = paired_tests(mine, other, args.metric)
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_main(main)
