"""``python -m llmrec_local.candidates``: the candidate lists of the pair job, from a trained base run or imported.

Examples::

    python -m llmrec_local.candidates --data work/dataset --base-run work/runs/lightgcn-seed0 --out work/candidates
    python -m llmrec_local.candidates --data work/dataset --candidates my_candidates.csv --k 10 --out work/candidates
    python -m llmrec_local.candidates --data work/dataset --base-run RUN --out work/candidates k=20 --dry-run

Training the base run is the pipeline's job (``python -m llmrec_local.run RECIPE --until candidates`` trains it into
``runs/_candidates_base`` first); this command only ranks or imports.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..artifacts.base import read_manifest
from ..cli import (add_common_args, add_dry_run, add_overrides, add_recipe, configure_logging, parse_args,
                   print_dry_run, prog, run_main, would_write)
from ..config import apply_overrides, dump_toml, load_toml, to_dict
from ..run.config import candidates_config
from .config import CandidatesConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.candidates"), formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a candidates artifact (user, rank, item): the top-K unseen items per user from a "
                    "training run's embeddings (training items masked; the original did not mask them), or "
                    "imported from a file.", epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--out", type=Path, required=True, help="the candidates artifact folder to write")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--base-run", type=Path, help="training run folder with embeddings.safetensors")
    src.add_argument("--candidates", type=Path,
                     help="precomputed candidates: a candidates/ artifact, a parquet/CSV with user,rank,item (or "
                          "user_id,rank,item_id), a .npy (n_users, K) or a torch.save'd tensor")
    add_recipe(p, "candidates")
    p.add_argument("--k", type=int, help="candidates per user (= k=...) [default: 10]")
    add_dry_run(p)
    add_overrides(p, "candidates", "k=20")
    add_common_args(p)
    return p


def build_config(args: argparse.Namespace) -> CandidatesConfig:
    """[candidates] table of --recipe, then --k, then the key=value overrides."""
    table: dict[str, Any] = dict(load_toml(args.recipe).get("candidates", {})) if args.recipe else {}
    if args.k is not None:
        table["k"] = args.k
    return candidates_config(apply_overrides(table, args.overrides))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    config = build_config(args)
    if args.dry_run:
        source = ("base run", args.base_run) if args.base_run is not None else ("imported candidates", args.candidates)
        return print_dry_run(dump_toml({"candidates": to_dict(config)}), {"candidates": would_write(args.out)},
                             reads={"dataset": args.data, source[0]: source[1]})
    from .stage import candidates

    path = candidates(config, args.data, args.out, base_run=args.base_run, imported=args.candidates,
                      force=args.force)
    manifest = read_manifest(path)
    print(json.dumps({"candidates": str(path), "k": config.k, "source": manifest["source"],
                      **manifest["counts"]}))
    return 0


if __name__ == "__main__":
    run_main(main)
