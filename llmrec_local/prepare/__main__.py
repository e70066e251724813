"""``python -m llmrec_local.prepare SOURCE --out DIR``: build a dataset artifact from a raw dataset folder.

Examples:
    python -m llmrec_local.prepare ../shared/data/ml-latest-small --out work/ml-small
    python -m llmrec_local.prepare data/netflix --split given --out work/netflix
    python -m llmrec_local.prepare data/gowalla --split given --val-from-train 5 --out work/gowalla  # train.txt ...
    python -m llmrec_local.prepare my.csv --user-col uid --item-col sku --min-rating 3 --user-min 5 --out work/mine
    python -m llmrec_local.prepare data/ml-latest-small --out work/ml test_ratio=0.1 seed=3 --dry-run

Prints the summary (raw counts before any filtering, counts after threshold / k-core, sparsity, split sizes); the
same text is saved as ``summary.md`` in the artifact.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..artifacts.base import is_complete, read_manifest, read_summary
from ..cli import (add_common_args, add_dry_run, add_overrides, configure_logging, parse_args, print_dry_run, prog,
                   run_main, would_write)
from ..config import apply_overrides, config_hash, dump_toml, from_mapping, to_dict
from ..errors import ConfigError
from .config import PrepareConfig
from .stage import prepare

log = logging.getLogger("llmrec_local.prepare")

# Flags that map one-to-one onto PrepareConfig fields (flag --a-b -> field a_b); None = not given on the CLI.
_FIELD_FLAGS: dict[str, dict[str, Any]] = {
    "format": dict(choices=["auto", "llmrec", "movielens", "generic"], help="source format (default: auto-detect)"),
    "min_rating": dict(type=float, help="positives are ratings >= this (default 4.0; ignored without ratings)"),
    "user_min": dict(type=int, help="k-core: drop users with fewer positives (default 0 = off)"),
    "item_min": dict(type=int, help="k-core: drop items with fewer positives (default 0 = off)"),
    "split": dict(choices=["random", "leave_one_out", "temporal", "given"],
                  help="random (per user, val carved from train; default), leave_one_out, temporal (global time "
                       "cut), given (the source's own train/val/test files)"),
    "test_ratio": dict(type=float, help="test fraction (default 0.2)"),
    "val_ratio": dict(type=float, help="validation fraction (default 0.1; 0 = no validation set)"),
    "seed": dict(type=int, help="split seed (default 0)"),
    "item_catalog": dict(choices=["auto", "interacted", "all"],
                         help="items to index: with interactions, or all items of the source (default auto: all for "
                              "LLMRec's release, interacted otherwise)"),
    "on_leak": dict(choices=["error", "drop"], help="given split: error (default) or drop val/test pairs that are "
                                                    "also in train or whose user has no training data"),
    "val_from_train": dict(type=float, metavar="N|RATIO",
                           help="given split: replace the source's validation set by pairs carved from train: an "
                                "integer N >= 2 moves one random training pair of every user with at least N; a "
                                "ratio in (0, 1) moves that fraction of each user's training pairs (at least 1, users "
                                "with >= 2); seeded by --seed (default 0 = off: the source's validation set)"),
    "split_col": dict(help="generic: the fixed split column (train|val|test) read by --split given (default split)"),
    "encoding": dict(help="source text encoding: auto (default; strict UTF-8, latin-1 only for MovieLens .dat and "
                          "Netflix release files) or a codec name such as latin-1 or cp1252"),
    "on_bad_rating": dict(choices=["error", "drop"], help="a blank or NaN rating: error (default) or drop the row "
                                                          "(counted in the summary)"),
    "interactions_file": dict(help="generic: interactions table name (default interactions[.csv|.tsv|.parquet])"),
    "items_file": dict(help="generic: items table name (default items)"),
    "users_file": dict(help="generic: users table name (default users)"),
    "user_col": dict(help="generic: user id column (default user_id)"),
    "item_col": dict(help="generic: item id column (default item_id)"),
    "rating_col": dict(help="generic: rating column (default rating)"),
    "timestamp_col": dict(help="generic: timestamp column (default timestamp)"),
    "title_col": dict(help="generic: item title column (default title)"),
    "year_col": dict(help="generic: item year column (default year)"),
    "genres_col": dict(help="generic: item genres column (default genres)"),
    "image_col": dict(help="generic: item image path column (default image_path)"),
    "genre_sep": dict(help="generic: separator inside the genres column (default |)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.prepare"),
        description="Prepare a dataset artifact (interactions, split, items, users parquet + manifest + summary) "
                    "from LLMRec's release folder, a MovieLens release, or generic CSV/parquet tables.",
    )
    parser.add_argument("source", type=Path, help="raw dataset folder (or a generic interactions file)")
    parser.add_argument("--out", type=Path, required=True, help="output folder of the dataset artifact")
    for name, kwargs in _FIELD_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, **kwargs)
    parser.add_argument("--no-threshold", action="store_true",
                        help="keep every interaction as a positive (min_rating unset)")
    add_dry_run(parser)
    add_overrides(parser, "prepare", "test_ratio=0.1 user_min=5 (every flag above is also a key)")
    add_common_args(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    """The PrepareConfig for parsed CLI arguments: the flags, then the key=value overrides (range errors become
    ConfigError naming the field)."""
    data: dict[str, Any] = {"source": str(args.source)}
    data.update({name: getattr(args, name) for name in _FIELD_FLAGS if getattr(args, name) is not None})
    data = apply_overrides(data, args.overrides)
    if args.no_threshold:
        data["min_rating"] = None
    if data.get("split") == "given":
        # Explicit ratio flags would be ignored by a given split (their values cannot be told from the defaults later).
        given = [f"--{name.replace('_', '-')}" for name in ("test_ratio", "val_ratio") if name in data]
        if given:
            verb = "do" if len(given) > 1 else "does"
            raise ConfigError(f"{' and '.join(given)} {verb} not apply to --split given (the source's own test set is "
                              f"kept); to carve validation from the training pairs use --val-from-train (a ratio "
                              f"such as 0.1, or an integer N: one pair of each user with at least N)")
    return from_mapping(PrepareConfig, data, "prepare")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    config = config_from_args(args)
    if args.dry_run:
        digest = config_hash(config)
        return print_dry_run(dump_toml({"prepare": to_dict(config)}), {"dataset": would_write(args.out, digest)},
                             config_hash=digest, reads={"source": config.source})
    reused = is_complete(args.out) and not args.force and \
        read_manifest(args.out).get("config_hash") == config_hash(config)
    out = prepare(config, args.out, force=args.force)
    if reused:
        print(f"{out} is already complete for this config (use --force to rebuild)")
    print(read_summary(out), end="")
    print(f"\ndataset written to {out}")
    return 0


if __name__ == "__main__":
    run_main(main)
