"""The command line: --help of every command, dry run, clear errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec_local.augment.__main__ import main

PY = [sys.executable, "-m", "llmrec_local.augment"]


@pytest.mark.parametrize("argv,expect", [
    ([], "--max-requests"), (["merge"], "shard folders"), (["import"], "--llmrec-release"),
    (["candidates"], "training items masked"),
])
def test_help_of_every_command(argv: list[str], expect: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0 and expect in " ".join(capsys.readouterr().out.split())


def test_dry_run_resolves_recipe_flags_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('[candidates]\nk = 20\nepochs = 7\n[augment]\nmodel = "qwen2-7b"\n[augment.pairs]\n'
                      'temperature = 0.9\n')
    main(["--data", "d", "--out", "o", "--recipe", str(recipe), "--k", "5", "--shard", "1/4",
          "--set", "pairs.top_p=0.5", "--jobs", "pairs,profiles", "--dry-run"])
    out = json.loads(capsys.readouterr().out)
    cfg, cands = out["augment"], out["candidates"]
    assert cands["k"] == 5 and cands["epochs"] == 7 and cands["model"]["name"] == "lightgcn"
    assert cfg["pairs"] == {"temperature": 0.9, "top_p": 0.5, "max_tokens": 32}
    assert (cfg["shard_index"], cfg["shard_count"], cfg["jobs"]) == (1, 4, ["pairs", "profiles"])


def test_unknown_alias_exits_2_with_a_clear_message(dataset_path: Path, tmp_path: Path) -> None:
    proc = subprocess.run([*PY, "--model", "no-such-llm", "--models-dir", str(tmp_path), "--data", str(dataset_path),
                           "--out", str(tmp_path / "o"), "--jobs", "pairs,attributes"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: 'no-such-llm' is neither an existing path nor a registered llm alias" in proc.stderr
    assert not (tmp_path / "o" / "runs").exists(), "the model must be resolved before candidates are trained"


def test_bad_shard_and_missing_import_source(tmp_path: Path) -> None:
    from llmrec_local.errors import ConfigError

    with pytest.raises(ConfigError, match="0 <= i < N"):
        main(["--data", "d", "--out", "o", "--shard", "4/4", "--dry-run"])
    with pytest.raises(ConfigError, match="at least one of"):
        main(["import", "--data", "d", "--out", str(tmp_path)])


def test_moved_keys_name_their_new_place(tmp_path: Path) -> None:
    from llmrec_local.errors import ConfigError

    recipe = tmp_path / "r.toml"
    recipe.write_text('[augment]\nmodel = "qwen2-7b"\nk = 20\n')
    with pytest.raises(ConfigError, match=r"augment\.k moved to candidates\.k"):
        main(["--recipe", str(recipe), "--dry-run"])
    with pytest.raises(ConfigError, match=r"augment\.base_epochs moved to candidates\.epochs"):
        main(["--set", "base_epochs=3", "--dry-run"])


def test_missing_model_fails_before_any_work(tmp_path: Path) -> None:
    """Without --data the command would prepare the bundled dataset (and train a base model for the candidates);
    a model that is not on disk must stop it first, with nothing written."""
    out = tmp_path / "out"
    done = subprocess.run([*PY, "--model", "qwen2-7b", "--models-dir", str(tmp_path / "models"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 2 and "hf download" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_help_shows_no_none_defaults(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "[default: qwen2-7b]" in " ".join(text.split())
