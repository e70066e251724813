"""Helpers shared by every ``python -m llmrec_local.<stage>`` entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from .errors import LLMRecError


def configure_logging(verbose: bool = False) -> None:
    """INFO (or DEBUG) logs to stderr, one line each, so progress bars and printed summaries stay readable."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def set_offline_env() -> None:
    """Forbid hub downloads for every library that honours these variables (models are local folders only)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, "1")


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run a stage's ``main(argv)``; a project error prints ``error: <message>`` and exits with status 2
    (no traceback: the message already names the bad value and the fix)."""
    set_offline_env()
    try:
        code = main(argv)
    except LLMRecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Flags every stage accepts: ``--force`` to rebuild a finished artifact and ``-v`` for debug logs."""
    parser.add_argument("--force", action="store_true", help="rebuild the output even if a complete one exists")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
