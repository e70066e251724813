"""The `llmrec` command (``python -m llmrec_local``) dispatches to the same modules as ``python -m``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llmrec_local.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def _llmrec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmrec_local", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_help_lists_every_command() -> None:
    done = _llmrec("--help")
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in done.stdout


def test_unknown_command_suggests_the_closest() -> None:
    done = _llmrec("trian")
    assert done.returncode == 2
    assert "unknown command 'trian' (did you mean 'train'?)" in done.stderr


def test_command_runs_the_stage_module_with_its_arguments(tmp_path: Path) -> None:
    """`llmrec prepare SOURCE --out O --dry-run`-style calls reach the stage's own parser: a bad value gets the
    stage's own error (exit 2), a good --help its own usage."""
    done = _llmrec("prepare", "--help")
    assert done.returncode == 0 and "usage:" in done.stdout and "--out" in done.stdout
    done = _llmrec("prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
