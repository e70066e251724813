"""Helpers shared by every ``python -m llmrec_local.<stage>`` entry point, and the conventions they keep.

One spelling for one thing, on every command:

- settings are overridden by positional ``key=value`` arguments (``add_overrides``), anywhere among the flags
  (parse with ``parse_args``: intermixed parsing);
- the recipe file is ``--recipe`` (``add_recipe``);
- ``--dry-run`` resolves and validates the settings, prints them and what would be written where, and writes
  nothing (``add_dry_run``, ``print_dry_run``);
- an old spelling (``--set``, ``--config``, ``--print-config``) stays as a hidden alias that still works and logs
  one deprecation warning (``add_deprecated``), so old scripts keep running.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .compat import require_clean_start
from .errors import LLMRecError

log = logging.getLogger("llmrec_local.cli")


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


#: ``llmrec <command>`` while the ``llmrec`` command runs a module (set by `llmrec_local.__main__`; runpy replaces
#: ``sys.argv[0]`` with the module's file, so the name has to travel here).
invoked_as: str | None = None


def prog(default: str) -> str:
    """A parser's program name: `default` (``python -m llmrec_local.augment merge``), or, when run through the
    ``llmrec`` command, the same headed by ``llmrec <command>`` (``llmrec augment merge``), so usage lines show
    what the user typed."""
    if invoked_as is None:
        return default
    return " ".join([invoked_as, *default.split(" ")[3:]])


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


class _Overrides(argparse.Action):
    """Positional ``key=value`` overrides. Extends the list instead of replacing it, so values a deprecated
    ``--set`` stored first are kept (intermixed parsing reads the options before the positionals)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *values])


class _Deprecated(argparse.Action):
    """A hidden old spelling: does what the new one does (`mode` "flag": set True, "append": add the value,
    "store": set the value) and logs one deprecation warning per parser, however often it is given."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, mode: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0 if mode == "flag" else None, help=argparse.SUPPRESS,
                         **kwargs)
        self.new, self.mode, self.warned = new, mode, False

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if self.mode == "flag":
            setattr(namespace, self.dest, True)
        elif self.mode == "append":
            setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])
        else:
            setattr(namespace, self.dest, values)
        if not self.warned:
            self.warned = True
            log.warning("%s is deprecated and will be removed: use %s", option_string, self.new)


def add_deprecated(parser: argparse.ArgumentParser, old: str, *, dest: str, new: str, mode: str = "store",
                   **kwargs: Any) -> None:
    """Declare `old` as a hidden alias of the option (or positional) stored in `dest`; `new` is how the warning
    names the current spelling. `kwargs` (type, metavar) are those of the current option."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, mode=mode, default=argparse.SUPPRESS,
                        **kwargs)


def add_overrides(parser: argparse.ArgumentParser, table: str | None, example: str) -> None:
    """Positional ``key=value`` overrides of the settings of `table` (the config's recipe table; None: the whole
    recipe), into ``args.overrides``; the old ``--set KEY=VALUE`` stays as a hidden deprecated alias."""
    what = "recipe setting (table.key=value)" if table is None else f"[{table}] setting"
    parser.add_argument("overrides", nargs="*", action=_Overrides, default=[], metavar="KEY=VALUE",
                        help=f"override any {what}, e.g. {example} (dotted keys reach nested tables; later ones "
                             "win; they override the recipe and the flags)")
    add_deprecated(parser, "--set", dest="overrides", new="a positional KEY=VALUE", mode="append",
                   metavar="KEY=VALUE")


def add_recipe(parser: argparse.ArgumentParser, table: str, *, old: str | None = None, note: str = "") -> None:
    """``--recipe FILE`` (into ``args.recipe``, a Path) whose `table` table gives the settings; `note` adds to the
    help; `old` is a former spelling kept as a hidden deprecated alias."""
    parser.add_argument("--recipe", type=Path, metavar="FILE",
                        help=f"TOML recipe whose [{table}] table gives the settings{note}; the flags and KEY=VALUE "
                             "overrides win over it")
    if old:
        add_deprecated(parser, old, dest="recipe", new="--recipe", type=Path, metavar="FILE")


def add_dry_run(parser: argparse.ArgumentParser, *, old: str | None = None) -> None:
    """``--dry-run`` (into ``args.dry_run``); `old` is a former spelling kept as a hidden deprecated alias."""
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve and check the settings, print them and what would be written where, then "
                             "exit without writing anything (no model is loaded, nothing is trained)")
    if old:
        add_deprecated(parser, old, dest="dry_run", new="--dry-run", mode="flag")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with positional overrides allowed anywhere among the options (``--out O epochs=3 --force lr=1e-3``):
    plain parsing would take the positionals of the first run only and reject the later ones."""
    return parser.parse_intermixed_args(argv)


def would_write(path: str | Path, config_hash: str | None = None) -> str:
    """How a dry run describes one output folder: new, already complete for this config (reused), or in place."""
    from .artifacts.base import is_complete, read_manifest

    path = Path(path)
    if not path.exists():
        return f"{path} (new)"
    if is_complete(path):
        if config_hash is None:
            return f"{path} (complete: reused when built from the same config and inputs, else an error without " \
                   "--force)"
        if read_manifest(path).get("config_hash") == config_hash:
            return f"{path} (complete for this config: reused unless its inputs changed or --force)"
        return f"{path} (complete for another config: an error unless --force rebuilds it)"
    return f"{path} (exists, unfinished: resumed or rebuilt)"


def would_read(path: str | Path) -> str:
    """How a dry run describes one input: a complete artifact, some other existing file or folder, or missing
    (a dry run reports a missing input instead of failing: it may be produced by an earlier step)."""
    from .artifacts.base import is_complete

    path = Path(path)
    if not path.exists():
        return f"{path} (missing: the real run fails unless it exists by then)"
    return f"{path} (complete artifact)" if path.is_dir() and is_complete(path) else f"{path} (exists)"


def print_dry_run(settings: str, writes: Mapping[str, str | Path], *, config_hash: str | None = None,
                  reads: Mapping[str, str | Path] | None = None) -> int:
    """The end of every ``--dry-run``: the resolved settings (TOML), the config hash, one ``# reads`` comment per
    input (see `would_read`) and one ``# would write`` comment per output (what -> where, see `would_write`), all
    valid TOML. Returns the exit status 0."""
    lines = [settings.rstrip("\n")]
    if config_hash is not None:
        lines.append(f"# config hash: {config_hash}")
    lines += [f"# reads {what}: {would_read(where)}" for what, where in (reads or {}).items()]
    lines += [f"# would write {what}: {where}" for what, where in writes.items()]
    lines.append("# dry run: nothing was written")
    print("\n".join(lines))
    return 0
