"""``python -m llmrec_local.report export``: finished runs as TensorBoard event files (training loss, validation
curves, final test metrics), to browse offline with ``tensorboard --logdir DIR``.

Examples:
    python -m llmrec_local.report export --workdir artifacts/quickstart --tensorboard artifacts/quickstart/tb
    python -m llmrec_local.report export --workdir runs/cmp --tensorboard tb --dry-run

The report itself (report.md, report.html) is written by the pipeline's report stage
(``python -m llmrec_local.run RECIPE``). TensorBoard comes with the optional ``tracking`` extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..cli import add_dry_run, configure_logging, print_dry_run, prog, run_main, would_write


def build_parser() -> argparse.ArgumentParser:
    """Parser with the `export` sub-command."""
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.report"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    sub = p.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write finished runs as TensorBoard event files",
                        description="Write the training loss, validation curves and final test metrics of every "
                                    "finished run under --workdir as TensorBoard event files, one TensorBoard run "
                                    "per run folder (an existing export of a run is replaced).")
    ex.add_argument("--workdir", type=Path, required=True,
                    help="a recipe workdir (e.g. artifacts/quickstart) or a multi-seed output folder; every finished "
                         "run at or below it is exported")
    ex.add_argument("--tensorboard", type=Path, required=True, metavar="DIR",
                    help="folder of the event files: DIR/<run folder relative to --workdir>/; view with "
                         "`tensorboard --logdir DIR`")
    add_dry_run(ex)
    ex.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    from .tensorboard import collect, write_events

    runs = collect(args.workdir)
    if args.dry_run:
        from ..config import dump_toml

        settings = dump_toml({"export": {"workdir": str(args.workdir), "tensorboard": str(args.tensorboard)}})
        return print_dry_run(settings, {f"events of {run.name} ({len(run.points)} points)":
                                        would_write(args.tensorboard / run.name) for run in runs},
                             reads={run.name: run.path for run in runs})
    for path in write_events(runs, args.tensorboard):
        print(f"events: {path}")
    print(f"view with: tensorboard --logdir {args.tensorboard}")
    return 0


if __name__ == "__main__":
    run_main(main)
