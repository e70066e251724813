"""The report says how each run's epoch was chosen (`selection` of the run manifest, carried by the runner)."""

from __future__ import annotations

from llmrec_local.report.stage import render_markdown


def _run(name: str, selection: str | None) -> dict:
    run = {"name": name, "seed": 0, "model": "lightgcn", "side": [], "metrics": {"recall@20": 0.1}}
    return run if selection is None else {**run, "selection": selection}


def test_every_run_on_validation_keeps_the_plain_sentence() -> None:
    text = render_markdown({"runs": [_run("a", "val"), _run("b", None)]})
    assert "models were selected on the validation split." in text
    assert "| a | lightgcn | none | - | best epoch on validation |" in text


def test_other_selections_are_named_per_run() -> None:
    text = render_markdown({"runs": [_run("a", "val"), _run("b", "last"), _run("c", "test")]})
    assert "models were selected on the validation split" not in text
    assert ("model selection: best epoch on validation for a; none: last epoch (selection='last') for b; "
            "best epoch on TEST (paper protocol) for c.") in text
    assert "| b | lightgcn | none | - | none: last epoch (selection='last') |" in text
