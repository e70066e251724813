"""``python -m llmrec_local.prepare``: flags, printed summary, reuse, --force, --dry-run and error exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.cli import run_main
from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.prepare.__main__ import main


def test_help_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "llmrec_local.prepare", "--help"], capture_output=True, text=True,
                          timeout=120, check=True)
    for flag in ("--out", "--format", "--min-rating", "--user-min", "--item-min", "--split", "--test-ratio",
                 "--val-ratio", "--seed", "--force", "--no-threshold"):
        assert flag in done.stdout


def test_prepare_prints_the_summary_and_reuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = generate_synthetic(tmp_path / "raw", n_users=20, n_items=30, posters=False)
    out = tmp_path / "ds"
    args = [str(src), "--out", str(out), "--min-rating", "4", "--user-min", "3", "--split", "leave_one_out",
            "--seed", "5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| raw (before filtering) | 20 | 30 rated of 30 | 300 |" in printed
    assert "k-core (users >= 3, items >= 0)" in printed and "sparsity:" in printed and "| test |" in printed
    ds = Dataset.load(out)
    assert ds.manifest["config"]["split"] == "leave_one_out" and ds.manifest["seed"] == 5

    assert main(args) == 0
    assert "already complete for this config" in capsys.readouterr().out

    changed = args[:-1] + ["6"]
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, changed)
    assert exit_info.value.code == 2
    assert "pass --force to rebuild it" in capsys.readouterr().err
    assert main(changed + ["--force"]) == 0 and Dataset.load(out).manifest["seed"] == 6


def test_dry_run_and_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--out", str(tmp_path / "o"), "--no-threshold", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "[prepare]" in printed and "min_rating" not in printed and "# config hash:" in printed
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, [str(tmp_path), "--out", str(tmp_path / "o"), "--test-ratio", "1.5"])
    assert exit_info.value.code == 2 and "test_ratio must be in [0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_main(main, [str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert "dataset path does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
