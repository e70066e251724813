"""Helpers shared by every ``python -m llmrec_local.<stage>`` entry point."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from .compat import require_clean_start
from .errors import LLMRecError


def configure_logging(verbose: bool = False) -> None:
    """INFO (or DEBUG) logs to stderr, one line each, so progress bars and printed summaries stay readable."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a real default the help does not state already.

    argparse's own ArgumentDefaultsHelpFormatter also prints ``(default: None)`` for flags whose None means "take
    the recipe's or the config's value", next to the help's own ``[default: ...]`` (a contradiction in --help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, [], (), False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run a stage's ``main(argv)``; a project error prints ``error: <message>`` and exits with status 2
    (no traceback: the message already names the bad value and the fix). Importing the package has entered the
    compatibility layer (offline mode). Run as a command (`argv` None), a heavy library imported while loading the
    stage module is an error; in-process calls with an `argv` (tests, notebooks) skip that check."""
    if argv is None:
        require_clean_start()
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
