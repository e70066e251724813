"""``python -m llmrec_local.embed``: embed a dataset's item text, posters and LLM augmentations with local models.

Example::

    python -m llmrec_local.embed --data out/dataset --augment out/augment --out out/embed
    python -m llmrec_local.embed --data out/dataset --out out/embed --sources item_text,item_image \\
        --image-model ~/models/CLIP-ViT-B-32-laion2B-s34B-b79K
    python -m llmrec_local.embed --data out/dataset --augment out/augment --out out/embed attribute_mode=concat \
        --dry-run
    python -m llmrec_local.embed cache             # size of the shared embedding cache
    python -m llmrec_local.embed cache --clear     # empty it
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..artifacts.base import read_manifest
from ..cli import (add_common_args, add_dry_run, add_overrides, add_recipe, configure_logging, parse_args,
                   print_dry_run, prog, run_main, would_write)
from ..config import apply_overrides, dump_toml, from_mapping, load_toml, to_dict
from ..executors.ray_executor import with_ray_flags
from .config import EmbedConfig
from .sources import SOURCES
from .stage import check_augment_folder, embed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.embed"),
        description="Encode item text, generated item attributes, user profiles and posters into embedding "
                    "artifacts (ids + vectors + mask) with local sentence-transformers / open_clip models. "
                    "Unchanged rows are served from a content-hash cache under OUT/.cache.",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset artifact folder (from prepare)")
    parser.add_argument("--augment", type=Path, default=None,
                        help="augmentation folder holding item_attributes/ and user_profiles/ (from augment)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the embedding artifacts")
    add_recipe(parser, "embed")
    parser.add_argument("--sources", default=None,
                        help=f"comma-separated subset of {','.join(SOURCES)} "
                             f"(default: item_text,item_attributes,user_profiles)")
    parser.add_argument("--text-model", default=None,
                        help="text encoder: all-minilm-l6-v2 (built in), a registry alias or a local "
                             "sentence-transformers folder")
    parser.add_argument("--image-model", default=None,
                        help="image encoder: a registry alias, an open_clip local-dir folder or a checkpoint file")
    parser.add_argument("--image-arch", default=None, help="open_clip architecture of a checkpoint file (ViT-B-32)")
    parser.add_argument("--image-dir", default=None,
                        help="folder of posters named <item_id>.<ext> (default: the items' image_path column)")
    parser.add_argument("--models-dir", default=None, help="extra folder searched by the model registry")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, default=None, help="inputs per forward pass (default 64)")
    parser.add_argument("--executor", choices=["local", "ray"], default=None,
                        help="local: this process (default); ray: a pool of encoder actors on Ray Data, "
                             "bit-identical vectors (docs/usage.md, Scaling out)")
    parser.add_argument("--ray-address", default=None,
                        help="--executor ray: cluster to join (auto, ray://host:10001); default: a local Ray runtime")
    parser.add_argument("--num-engines", type=int, default=None,
                        help="--executor ray: encoder actors in the pool (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dry_run(parser)
    add_overrides(parser, "embed", "attribute_mode=concat")
    add_common_args(parser)
    return parser


def resolve_config(args: argparse.Namespace) -> EmbedConfig:
    """EmbedConfig from the recipe's [embed] table, then flags, then the key=value overrides (later wins)."""
    table: dict[str, Any] = dict(load_toml(args.recipe).get("embed", {})) if args.recipe else {}
    flags = {"text_model": args.text_model, "image_model": args.image_model, "image_arch": args.image_arch,
             "image_dir": args.image_dir, "models_dir": args.models_dir, "device": args.device,
             "batch_size": args.batch_size, "executor": args.executor,
             "sources": [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None}
    table.update({k: v for k, v in flags.items() if v is not None})
    table = with_ray_flags(table, args.ray_address, args.num_engines)
    table = apply_overrides(table, args.overrides)
    return from_mapping(EmbedConfig, table, where="embed")


def main_cache(argv: Sequence[str]) -> int:
    """``cache [--dir D] [--clear] [--encoder KEY]``: report (JSON) or empty the shared embedding cache."""
    from .cache import cache_report, clear_cache, embedding_cache_dir

    parser = argparse.ArgumentParser(prog=prog("python -m llmrec_local.embed cache"),
                                     description="Size of the shared embedding cache (every workdir's vectors, "
                                                 "keyed by encoder identity and content); --clear empties it.")
    parser.add_argument("--dir", default=None, help="cache folder (default: $LLMREC_EMBED_CACHE_DIR, else "
                                                    "$LLMREC_CACHE_DIR/embeddings or ~/.cache/llmrec_local/embeddings)")
    parser.add_argument("--clear", action="store_true", help="delete the cached vectors")
    parser.add_argument("--encoder", default=None, help="with --clear: only this encoder key (see the report)")
    args = parser.parse_args(argv)
    root = embedding_cache_dir(args.dir)
    if args.clear:
        print(json.dumps({"root": str(root), "freed_bytes": clear_cache(root, args.encoder)}))
    else:
        print(json.dumps(cache_report(root), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "cache":
        return main_cache(argv[1:])
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    config = resolve_config(args)
    if args.dry_run:
        check_augment_folder(config, args.augment)
        reads = {"dataset": args.data, **({"augmentations": args.augment} if args.augment is not None else {})}
        # item_attributes writes one folder per generated field, known only once the augmentations are read.
        writes = {source: would_write(args.out / source) for source in config.sources}
        return print_dry_run(dump_toml({"embed": to_dict(config)}), writes, reads=reads)
    results = embed(config, args.data, args.out, augment=args.augment, force=args.force,
                    progress=not args.no_progress)
    for source, path in results.items():
        manifest = read_manifest(path)
        print(json.dumps({"source": source, "path": str(path), "dim": manifest["dim"], **manifest["counts"]}))
    return 0


if __name__ == "__main__":
    run_main(main)
