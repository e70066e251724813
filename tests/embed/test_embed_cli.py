"""``python -m llmrec_local.embed``: help, flags -> config, a real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec_local.embed.__main__ import build_parser, main, resolve_config


def test_help_runs_without_heavy_imports() -> None:
    code = ("import sys, runpy; sys.argv=['x','--help']\n"
            "try:\n    runpy.run_module('llmrec_local.embed', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('sentence_transformers', 'open_clip', 'transformers') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in ("--data", "--augment", "--out", "--sources", "--text-model", "--image-model", "--device",
                 "--batch-size", "--force"):
        assert flag in result.stdout
    assert "HEAVY []" in result.stdout


def test_flags_override_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('[embed]\nbatch_size = 8\nsources = ["item_text", "user_profiles"]\nnormalize = false\n')
    args = build_parser().parse_args(["--data", "d", "--out", "o", "--recipe", str(recipe), "--batch-size", "32",
                                      "--set", "attribute_mode=concat"])
    cfg = resolve_config(args)
    assert (cfg.batch_size, cfg.sources, cfg.normalize, cfg.attribute_mode) == (
        32, ("item_text", "user_profiles"), False, "concat")
    args = build_parser().parse_args(["--data", "d", "--out", "o", "--sources", "item_text, item_image",
                                      "--image-model", "clip"])
    assert resolve_config(args).sources == ("item_text", "item_image")


def test_main_writes_artifacts(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(dataset), "--out", str(tmp_path / "e"), "--sources", "item_text", "--device", "cpu",
                 "--no-progress"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    record = json.loads(line)
    assert record["source"] == "item_text" and record["dim"] == 384 and record["rows"] == 6
