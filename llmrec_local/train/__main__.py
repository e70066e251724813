"""``python -m llmrec_local.train``: train one recommender on a dataset artifact and write a run folder.

Examples::

    python -m llmrec_local.train --data data/ml --out runs/mf-s0 --model mf --seed 0 epochs=100
    python -m llmrec_local.train --data data/ml --out runs/lgn --recipe recipes/quickstart.toml --dry-run
    python -m llmrec_local.train --data data/ml --out runs/llmrec --model llmrec --variant faithful \
        --item-text embed/item_text --user-profiles embed/user_profiles --pairs augment/pairs \
        --item-attribute director=embed/attr_director --ablation w/o-prune model.dim=64 lr=1e-3
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..cli import (add_common_args, add_dry_run, add_overrides, add_recipe, configure_logging, parse_args,
                   print_dry_run, prog, run_main, would_write)
from ..config import apply_overrides, from_mapping, load_toml
from ..errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.train"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="dataset artifact folder (from llmrec_local.prepare)")
    p.add_argument("--out", type=Path, required=True, help="run folder to create")
    add_recipe(p, "train", old="--config", note=" (a file without one is read whole)")
    p.add_argument("--model", choices=["mf", "lightgcn", "sgl", "simgcl", "llmrec"], help="model (= model.name=...)")
    p.add_argument("--variant", choices=["faithful", "fixed"], help="LLMRec variant (= model.variant=...)")
    p.add_argument("--seed", type=int, help="random seed (= seed=...)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (= device=...)")
    p.add_argument("--ablation", action="append", default=[],
                   help="paper ablation: w/o-u-i, w/o-u, w/o-u&i, w/o-prune, w/o-mae (repeatable)")
    p.add_argument("--item-text", help="item text embedding artifact")
    p.add_argument("--item-image", help="item image embedding artifact")
    p.add_argument("--item-attribute", action="append", default=[], metavar="FIELD=PATH",
                   help="item attribute embedding artifact for one field (repeatable)")
    p.add_argument("--user-profiles", help="user profile embedding artifact")
    p.add_argument("--pairs", help="LLM implicit-feedback pairs folder (records.parquet: user, pos_item, neg_item)")
    p.add_argument("--no-dataset-features", action="store_true",
                   help="ignore features/text_feat.npy and image_feat.npy inside the dataset artifact")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (= progress=false)")
    add_dry_run(p, old="--print-config")
    add_overrides(p, "train", "epochs=50 model.dim=128")
    add_common_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    from . import SideInputs, TrainConfig, ablation_overrides, train, train_config_hash

    base: dict = {}
    if args.recipe:
        raw = load_toml(args.recipe)
        base = dict(raw.get("train", raw))
    flags = []
    if args.model:
        flags.append(f'model.name="{args.model}"')
    if args.variant:
        flags.append(f'model.variant="{args.variant}"')
    if args.seed is not None:
        flags.append(f"seed={args.seed}")
    if args.device:
        flags.append(f'device="{args.device}"')
    if args.no_progress:
        flags.append("progress=false")
    for name in args.ablation:
        flags.extend(ablation_overrides(name))
    config = from_mapping(TrainConfig, apply_overrides(base, [*flags, *args.overrides]), "train")
    attrs = {}
    for spec in args.item_attribute:
        field, sep, path = spec.partition("=")
        if not sep or not field or not path:
            raise ConfigError(f"--item-attribute {spec!r} must be FIELD=PATH, e.g. director=embed/attr_director")
        attrs[field] = path
    side = SideInputs(item_text=args.item_text, item_image=args.item_image, item_attributes=attrs,
                      user_profiles=args.user_profiles, pairs=args.pairs,
                      use_dataset_features=not args.no_dataset_features)
    if args.dry_run:
        from ..config import dump_toml, to_dict

        digest = train_config_hash(config)
        named = {"item text": args.item_text, "item image": args.item_image, "user profiles": args.user_profiles,
                 "pairs": args.pairs, **{f"item attribute {field}": path for field, path in attrs.items()}}
        reads = {"dataset": args.data, **{what: path for what, path in named.items() if path is not None}}
        return print_dry_run(dump_toml({"train": to_dict(config)}), {"run": would_write(args.out)},
                             config_hash=digest, reads=reads)
    out = train(config, args.data, args.out, side=side, force=args.force)
    manifest = json.loads((out / "manifest.json").read_text())
    print(json.dumps({"run": str(out), "best_epoch": manifest.get("best_epoch"),
                      "val_metrics": manifest.get("val_metrics")}, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_main(main)
