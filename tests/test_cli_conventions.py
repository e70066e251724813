"""One CLI: every command's parser keeps the same conventions (docs/usage.md, "Conventions").

- settings are overridden by positional ``KEY=VALUE`` arguments wherever a command has a config;
- the recipe file is ``--recipe``; ``--dry-run`` on every command that writes, and a dry run writes nothing;
- old spellings (``--set``, ``--config``, ``--print-config``) are hidden, still work, and warn once;
- every option has help text, and one thing has one flag name on every command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec_local.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parents[1]

#: command -> (module, parser factory, sub-command or None, has a config (KEY=VALUE overrides), writes (--dry-run))
PARSERS: dict[str, tuple[str, str, str | None, bool, bool]] = {
    "run": ("llmrec_local.run.__main__", "build_parser", None, True, True),
    "run.multiseed": ("llmrec_local.run.multiseed", "build_parser", None, True, True),
    "prepare": ("llmrec_local.prepare.__main__", "build_parser", None, True, True),
    "candidates": ("llmrec_local.candidates.__main__", "build_parser", None, True, True),
    "augment": ("llmrec_local.augment.__main__", "run_parser", None, True, True),
    "augment merge": ("llmrec_local.augment.__main__", "merge_parser", None, False, True),
    "augment import": ("llmrec_local.augment.__main__", "import_parser", None, False, True),
    "augment candidates": ("llmrec_local.augment.__main__", "candidates_parser", None, True, True),
    "augment inspect": ("llmrec_local.augment.__main__", "inspect_parser", None, False, False),
    # slurm's own settings are flags; every other argument (KEY=VALUE included) goes to the augment tasks
    "augment slurm": ("llmrec_local.augment.__main__", "slurm_parser", None, False, True),
    "embed": ("llmrec_local.embed.__main__", "build_parser", None, True, True),
    "train": ("llmrec_local.train.__main__", "build_parser", None, True, True),
    "evaluate": ("llmrec_local.evaluate.__main__", "build_parser", None, False, True),
    "tune": ("llmrec_local.tune.__main__", "build_parser", None, True, True),
    "report export": ("llmrec_local.report.__main__", "build_parser", "export", False, True),
    "kit pack": ("llmrec_local.kit.__main__", "build_parser", "pack", False, True),
    "kit verify": ("llmrec_local.kit.__main__", "build_parser", "verify", False, False),
    "doctor": ("llmrec_local.doctor.__main__", "build_parser", None, False, False),
    "serve": ("serving.recommend_server", "build_parser", None, False, False),
    "llm-server": ("serving.llm_server", "build_parser", None, True, True),
}
#: Old spellings: never shown in --help.
DEPRECATED = ("--set", "--config", "--print-config")
#: One name for one thing: the spellings on the left are not used, the right one is.
SAME_THING = {"--model-dir": "--models-dir", "--models_dir": "--models-dir", "--output": "--out",
              "--dataset": "--data", "--quiet": "--no-progress", "--no-progress-bar": "--no-progress",
              "--config-file": "--recipe", "--print": "--dry-run", "--dryrun": "--dry-run", "--overwrite": "--force"}
HEAVY = ("vllm", "transformers", "sentence_transformers", "open_clip", "torchvision", "fastapi", "tensorboard", "ray",
         "optuna", "uvicorn")


def _parser(name: str) -> argparse.ArgumentParser:
    module, factory, sub, _, _ = PARSERS[name]
    parser = getattr(importlib.import_module(module), factory)()
    if sub is None:
        return parser
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices[sub]


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


def test_every_llmrec_command_is_checked() -> None:
    modules = {module.removesuffix(".__main__") for module, *_ in PARSERS.values()}
    assert {module for module, _ in COMMANDS.values()} <= modules


def test_building_parsers_imports_no_heavy_library() -> None:
    """In a fresh interpreter: import every command module and build its parser; no heavy library is loaded."""
    code = ("import importlib, sys\n"
            f"for module, factory, *_ in {list(PARSERS.values())!r}:\n"
            "    getattr(importlib.import_module(module), factory)()\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", PARSERS)
def test_conventions(name: str) -> None:
    _, _, _, has_config, writes = PARSERS[name]
    parser = _parser(name)
    visible = _visible(parser)
    flags = {flag for action in visible for flag in action.option_strings}
    for action in visible:  # help text on everything the user can type
        assert action.help and action.help.strip(), f"{name}: {action.option_strings or action.dest} has no help"
    assert not flags & set(DEPRECATED), f"{name} shows an old spelling: {sorted(flags & set(DEPRECATED))}"
    assert not flags & set(SAME_THING), {flag: SAME_THING[flag] for flag in flags & set(SAME_THING)}
    if "--verbose" in flags:
        assert "-v" in flags
    overrides = [a for a in visible if not a.option_strings and a.dest == "overrides"]
    assert bool(overrides) == has_config, f"{name}: positional KEY=VALUE overrides expected: {has_config}"
    if overrides:
        assert overrides[0].nargs == "*" and overrides[0].metavar == "KEY=VALUE"
    assert ("--dry-run" in flags) == writes, f"{name}: --dry-run expected: {writes}"
    if any(a.dest == "recipe" for a in parser._actions) and name != "run":
        assert "--recipe" in flags


def _tree(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with its size and modification time: a dry run must change none."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in root.rglob("*")
            if p.is_file()}


def test_dry_runs_write_nothing(dataset_path: Path, base_run: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """prepare, candidates, embed, train and evaluate on the tiny dataset: exit 0, print the resolved settings and
    where they would write, and leave every file as it was (their outputs do not exist afterwards)."""
    from llmrec_local.candidates.__main__ import main as candidates
    from llmrec_local.embed.__main__ import main as embed
    from llmrec_local.evaluate.__main__ import main as evaluate
    from llmrec_local.prepare.__main__ import main as prepare
    from llmrec_local.train.__main__ import main as train

    raw = dataset_path.parent / "raw"
    out = tmp_path / "out"
    calls = {
        "prepare": (prepare, [str(raw), "--out", str(out / "dataset"), "--dry-run", "test_ratio=0.3"]),
        "candidates": (candidates, ["--data", str(dataset_path), "--base-run", str(base_run), "--out",
                                    str(out / "candidates"), "k=3", "--dry-run"]),
        "embed": (embed, ["--data", str(dataset_path), "--out", str(out / "embed"), "--sources", "item_text",
                          "--dry-run", "batch_size=8"]),
        "train": (train, ["--data", str(dataset_path), "--out", str(out / "run"), "--model", "mf", "epochs=2",
                          "--dry-run"]),
        "evaluate": (evaluate, ["--run", str(base_run), "--data", str(dataset_path), "--dry-run"]),
    }
    before = _tree(dataset_path.parent, base_run, tmp_path)
    for name, (main, argv) in calls.items():
        assert main(argv) == 0, name
        printed = capsys.readouterr().out
        assert "# would write " in printed and printed.rstrip().endswith("# dry run: nothing was written"), name
    assert _tree(dataset_path.parent, base_run, tmp_path) == before
    assert not out.exists()
    # the settings shown are the resolved ones, overrides included
    assert prepare(calls["prepare"][1]) == 0 and "test_ratio = 0.3" in capsys.readouterr().out
    assert train(calls["train"][1]) == 0 and "epochs = 2" in capsys.readouterr().out


def test_overrides_go_anywhere_among_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmrec_local.prepare.__main__ import main as prepare

    assert prepare([str(tmp_path), "seed=3", "--out", str(tmp_path / "o"), "--dry-run", "test_ratio=0.3",
                    "--split", "random"]) == 0
    printed = capsys.readouterr().out
    assert "seed = 3" in printed and "test_ratio = 0.3" in printed


def test_deprecated_spellings_still_work_and_warn_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from llmrec_local.augment.__main__ import main as augment
    from llmrec_local.train.__main__ import main as train

    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nepochs = 7\n")
    caplog.set_level(logging.WARNING, logger="llmrec_local.cli")
    assert train(["--data", "d", "--out", "o", "--config", str(recipe), "--print-config", "lr=0.5"]) == 0
    printed = capsys.readouterr().out
    assert "epochs = 7" in printed and "lr = 0.5" in printed and "# dry run: nothing was written" in printed
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["--config is deprecated and will be removed: use --recipe",
                        "--print-config is deprecated and will be removed: use --dry-run"]
    caplog.clear()
    assert augment(["--data", "d", "--out", "o", "--set", "pairs.temperature=0.8", "--set", "seed=4",
                    "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)["augment"]
    assert resolved["pairs"]["temperature"] == 0.8 and resolved["seed"] == 4
    assert [r.getMessage() for r in caplog.records] == [
        "--set is deprecated and will be removed: use a positional KEY=VALUE"]
    assert not (tmp_path / "o").exists()


def test_help_hides_the_old_spellings(capsys: pytest.CaptureFixture[str]) -> None:
    from llmrec_local.train.__main__ import main as train

    with pytest.raises(SystemExit):
        train(["--help"])
    text = capsys.readouterr().out
    assert "--recipe" in text and "--dry-run" in text and "KEY=VALUE" in text
    assert not any(old in text for old in DEPRECATED)
