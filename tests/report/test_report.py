"""Report rendering: aggregation over seeds, the Markdown tables, and reports of partial results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_study import make_study

from llmrec_local.report.stage import render_html, render_markdown, summarise_runs, write_report


def test_summarise_runs_mean_and_sample_std() -> None:
    rows = summarise_runs(make_study()["runs"])
    assert [r["name"] for r in rows] == ["lightgcn", "llmrec"]
    mean, std = rows[0]["recall@20"]
    assert mean == pytest.approx(0.31) and std == pytest.approx(0.01)
    assert rows[1]["seeds"] == [0, 1, 2]


def test_markdown_has_every_table() -> None:
    md = render_markdown(make_study(model={"alias": "qwen2-7b", "model_id": "qwen@1"}))
    assert "| llmrec | 3 | 0.3400 ± 0.0100 | 0.1650 ± 0.0000 |" in md
    assert ("| llmrec | lightgcn | recall@20 | +0.0300 | 0.004 | n/a | paired t over users | 608 | llmrec vs "
            "lightgcn: +0.0300 recall@20, p = 0.004, significant |") in md
    assert "| statistic | pairs | item_attributes |" in md and "| model | qwen@1 | qwen@1 |" in md
    assert "| USA | 3 |" in md and "skipped (done)" in md and "[recipe]" in md
    assert "| llmrec | llmrec | item_text | w/o-u |" in md and "| lightgcn | lightgcn | none | - |" in md


def test_write_report_returns_both_paths(tmp_path: Path) -> None:
    md, page = write_report(make_study(), tmp_path / "r")
    assert (md.name, page.name) == ("report.md", "report.html")
    assert md.read_text().startswith("# llmrec_local report: demo")
    assert page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("case", ["empty", "dataset only", "one run", "no comparisons", "augment without figures"])
def test_partial_results_render(case: str) -> None:
    full = make_study(p_value=None, model={"alias": "qwen2-7b", "model_id": "qwen@1"})
    results: dict[str, Any] = {
        "empty": {},
        "dataset only": {"recipe": "demo", "dataset": {"users": 3}},
        "one run": {"runs": full["runs"][:1]},
        "no comparisons": full,
        "augment without figures": {"augment": {"pairs": {"requests": 0, "valid_rate": None, "distributions": {}}}},
    }[case]
    md, page = render_markdown(results), render_html(results)
    assert md.startswith("# llmrec_local report") and page.rstrip().endswith("</html>")
    if case == "one run":
        assert "lightgcn (0.3000 over 1 seed); no baseline to compare against" in md
        assert "| lightgcn | 1 | 0.3000 | 0.1500 |" in md  # one seed: no "± 0.0000"
