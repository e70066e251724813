"""``python -m llmrec_local.tune``: the standalone form (a dataset artifact, [train] and [tune] from a file and
overrides) and the recipe form's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_local.artifacts.tune import read_best
from llmrec_local.errors import ConfigError
from llmrec_local.tune.__main__ import main

SPACE = 'tune.space.lr={type="log_float", low=0.001, high=0.05}'


def test_standalone_dry_run_and_search(dataset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "search.toml"
    config.write_text('[train]\nepochs = 2\nbatch_size = 32\nprogress = false\nmodel = { name = "mf", dim = 8 }\n'
                      "[tune]\ntrials = 1\n")
    args = ["--data", str(dataset_path), "--out", str(tmp_path / "tune"), "--recipe", str(config), SPACE]
    assert main([*args, "--dry-run", "train.lr=0.02"]) == 0
    printed = capsys.readouterr().out
    assert "[tune.space.lr]" in printed and "lr = 0.02" in printed and not (tmp_path / "tune").exists()
    assert main(args) == 0
    assert '"params": {"lr"' in capsys.readouterr().out
    assert 0.001 <= read_best(tmp_path / "tune")["params"]["lr"] <= 0.05


def test_cli_errors_name_the_fix(dataset_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give --recipe, or --data and --out"):
        main([SPACE])
    with pytest.raises(ConfigError, match="address train.* or tune.*"):
        main(["--data", str(dataset_path), "--out", str(tmp_path / "t"), "epochs=3"])
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[recipe]\nname = "r"\nworkdir = "{tmp_path / "w"}"\n[prepare]\nsource = "x"\n')
    with pytest.raises(ConfigError, match=r"has no \[tune\] table"):
        main(["--recipe", str(recipe)])
