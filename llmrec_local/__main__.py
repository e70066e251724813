"""``llmrec <command> ...`` (also ``python -m llmrec_local <command> ...``): one door to every entry point.

Each command runs the same module as ``python -m <module>`` would, with the remaining arguments, so
``llmrec train --help`` and ``python -m llmrec_local.train --help`` are the same program.
"""

from __future__ import annotations

import difflib
import runpy
import sys
from collections.abc import Sequence

#: command -> (module run as __main__, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("llmrec_local.run", "run a recipe end to end (prepare ... report), skipping finished stages"),
    "prepare": ("llmrec_local.prepare", "raw source folder -> dataset artifact"),
    "candidates": ("llmrec_local.candidates", "top-K unseen items per user from a base run (or a file)"),
    "augment": ("llmrec_local.augment", "the three LLM augmentations with a local model"),
    "embed": ("llmrec_local.embed", "encode item text, attributes, profiles and posters"),
    "tune": ("llmrec_local.tune", "validation search (Optuna) over a run's settings; the best become a tune artifact"),
    "train": ("llmrec_local.train", "train MF, LightGCN or LLMRec on a dataset artifact"),
    "evaluate": ("llmrec_local.evaluate", "full-ranking evaluation of a run"),
    "report": ("llmrec_local.report", "export finished runs' curves and test metrics to TensorBoard (report export)"),
    "serve": ("serving.recommend_server", "the recommendation API on 127.0.0.1"),
    "llm-server": ("serving.llm_server", "the lab's shared OpenAI-compatible vLLM server"),
    "kit": ("llmrec_local.kit", "pack and verify the air-gapped kit"),
    "doctor": ("llmrec_local.doctor", "check this machine: torch, CUDA, vLLM, models, disk"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: llmrec <command> [arguments ...]   (llmrec <command> --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "conventions:",
              "  KEY=VALUE      override a setting, anywhere among the flags (llmrec train ... epochs=5 model.dim=128)",
              "  --recipe FILE  read the settings from a recipe's table (llmrec run takes the recipe as its argument)",
              "  --dry-run      print the resolved settings and what would be written where; write nothing"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"error: unknown command {command!r}{hint}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module = COMMANDS[command][0]
    from . import cli

    cli.invoked_as = f"llmrec {command}"  # the usage lines of its parsers
    # The module reads its arguments from sys.argv exactly as under `python -m`, and exits through its own run_main.
    sys.argv = [f"llmrec {command}", *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
