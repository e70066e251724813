"""Every entry point answers ``--help`` (exit 0, a usage line naming its command) without running anything."""

from __future__ import annotations

import importlib

import pytest

ENTRY_POINTS = [
    ("llmrec_local.run.__main__", "python -m llmrec_local.run"),
    ("llmrec_local.prepare.__main__", "python -m llmrec_local.prepare"),
    ("llmrec_local.augment.__main__", "python -m llmrec_local.augment"),
    ("llmrec_local.embed.__main__", "python -m llmrec_local.embed"),
    ("llmrec_local.train.__main__", "python -m llmrec_local.train"),
    ("llmrec_local.evaluate.__main__", "python -m llmrec_local.evaluate"),
    ("llmrec_local.report.__main__", "python -m llmrec_local.report"),
    ("llmrec_local.run.multiseed", "multiseed"),
    ("llmrec_local.llm.smoke", "smoke"),
    ("serving.recommend_server", "recommend_server"),
    ("serving.__main__", "recommend_server"),
    ("serving.llm_server", "llm_server"),
]


@pytest.mark.parametrize("module, prog", ENTRY_POINTS)
def test_help(module: str, prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and prog in out.splitlines()[0]


@pytest.mark.parametrize("sub", ["merge", "import", "candidates"])
def test_augment_subcommand_help(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    from llmrec_local.augment.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main([sub, "--help"])
    assert exc.value.code == 0 and sub in capsys.readouterr().out.splitlines()[0]
