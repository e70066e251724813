"""The report shows the validation search: a summary per tuned run, every trial, the parameter importance (or why
there is none) and the trials chart."""

from __future__ import annotations

from typing import Any

from llmrec_local.report.stage import render_html, render_markdown


def _tuning(importance: dict[str, float] | None, note: str | None) -> dict[str, Any]:
    trials = [
        {"number": 0, "state": "COMPLETE", "value": 0.21, "last_epoch": 40, "duration_s": 3.0,
         "params": {"lr": 0.004, "model.dim": 64.0}},
        {"number": 1, "state": "PRUNED", "value": 0.05, "last_epoch": 10, "duration_s": 1.0,
         "params": {"lr": 1e-5, "model.dim": 32.0}},
        {"number": 2, "state": "COMPLETE", "value": 0.24, "last_epoch": 40, "duration_s": 3.1,
         "params": {"lr": 0.009, "model.dim": 64.0}},
    ]
    study = {"metric": "recall@20", "budget": 3, "counts": {"COMPLETE": 2, "PRUNED": 1, "FAIL": 0},
             "best": {"trial": 2, "value": 0.24, "params": {"lr": 0.009, "model.dim": 64}, "metric": "recall@20"},
             "importance": importance, "importance_note": note}
    return {"lightgcn": {"study": study, "trials": trials}}


def test_report_shows_the_search() -> None:
    results = {"recipe": "t", "tuning": _tuning({"lr": 0.8, "model.dim": 0.2}, None)}
    md = render_markdown(results)
    assert "## Validation tuning (selected on validation recall@20; test never seen)" in md
    assert "| lightgcn | 3 | 2 | 1 | 0 | 0.2400 | 2 | lr = 0.009, model.dim = 64 |" in md
    assert "| 1 | pruned | 0.0500 | 10 | 1e-05 | 32 |" in md
    assert "| lightgcn | lr | 0.800 |" in md
    page = render_html(results)
    assert "id=\"chart-tuning\"" in page and "Tuning trials: lightgcn" in page


def test_report_says_why_importance_is_missing() -> None:
    md = render_markdown({"recipe": "t", "tuning": _tuning(None, "not computed: ValueError: too few trials")})
    assert "| lightgcn | (note) | not computed: ValueError: too few trials |" in md
