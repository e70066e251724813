"""The recommendation server's command (`serving.recommend_server`, also ``python -m serving``): a bad run is
refused before the server binds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit.recommend import REPO_ROOT, TinyRun, server_command


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["incomplete", "schema_version", "not_a_run"])
def test_startup_refuses_a_bad_run(tiny_run: TinyRun, tmp_path: Path, damage: str) -> None:
    if damage == "not_a_run":
        run, needle = tiny_run.dataset, "expected a 'train' artifact"
    else:
        run = tmp_path / "run"
        shutil.copytree(tiny_run.run, run)
        if damage == "incomplete":
            (run / "_COMPLETE").unlink()
            needle = "incomplete"
        else:
            manifest = json.loads((run / "manifest.json").read_text())
            manifest["schema_version"] = 99
            (run / "manifest.json").write_text(json.dumps(manifest))
            needle = "schema version 99"
    proc = subprocess.run(server_command(run, "--port", "1"), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert needle in proc.stderr and str(run) in proc.stderr


def test_python_m_serving_is_the_recommendation_server() -> None:
    """``python -m serving`` runs the same command, and loading it imports no heavy library (clean-start check)."""
    done = subprocess.run([sys.executable, "-m", "serving", "--help"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: python -m serving.recommend_server") and "--run RUN" in done.stdout
