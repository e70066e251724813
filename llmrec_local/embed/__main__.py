"""``python -m llmrec_local.embed``: embed a dataset's item text, posters and LLM augmentations with local models.

Example::

    python -m llmrec_local.embed --data out/dataset --augment out/augment --out out/embed
    python -m llmrec_local.embed --data out/dataset --out out/embed --sources item_text,item_image \\
        --image-model ~/models/CLIP-ViT-B-32-laion2B-s34B-b79K
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
from ..cli import add_common_args, configure_logging, run_main
from ..config import apply_overrides, from_mapping, load_toml
from .config import EmbedConfig
from .sources import SOURCES
from .stage import embed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmrec_local.embed",
        description="Encode item text, generated item attributes, user profiles and posters into embedding "
                    "artifacts (ids + vectors + mask) with local sentence-transformers / open_clip models. "
                    "Unchanged rows are served from a content-hash cache under OUT/.cache.",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset artifact folder (from prepare)")
    parser.add_argument("--augment", type=Path, default=None,
                        help="augmentation folder holding item_attributes/ and user_profiles/ (from augment)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the embedding artifacts")
    parser.add_argument("--recipe", type=Path, default=None,
                        help="recipe TOML; its [embed] table gives the settings (flags below override it)")
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
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any [embed] setting, e.g. --set attribute_mode=concat (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_common_args(parser)
    return parser


def resolve_config(args: argparse.Namespace) -> EmbedConfig:
    """EmbedConfig from the recipe's [embed] table, then flags, then --set overrides (later wins)."""
    table: dict[str, Any] = dict(load_toml(args.recipe).get("embed", {})) if args.recipe else {}
    flags = {"text_model": args.text_model, "image_model": args.image_model, "image_arch": args.image_arch,
             "image_dir": args.image_dir, "models_dir": args.models_dir, "device": args.device,
             "batch_size": args.batch_size,
             "sources": [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None}
    table.update({k: v for k, v in flags.items() if v is not None})
    table = apply_overrides(table, args.overrides)
    return from_mapping(EmbedConfig, table, where="embed")


def main_cache(argv: Sequence[str]) -> int:
    """``cache [--dir D] [--clear] [--encoder KEY]``: report (JSON) or empty the shared embedding cache."""
    from .cache import cache_report, clear_cache, embedding_cache_dir

    parser = argparse.ArgumentParser(prog="python -m llmrec_local.embed cache",
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
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    config = resolve_config(args)
    results = embed(config, args.data, args.out, augment=args.augment, force=args.force,
                    progress=not args.no_progress)
    for source, path in results.items():
        manifest = read_manifest(path)
        print(json.dumps({"source": source, "path": str(path), "dim": manifest["dim"], **manifest["counts"]}))
    return 0


if __name__ == "__main__":
    run_main(main)
