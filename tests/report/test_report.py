"""Report rendering: aggregation over seeds, tables and self-contained HTML with plots."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from llmrec_local.report.stage import render_markdown, summarise_runs, svg_line_chart, write_report


def _results() -> dict:
    runs = []
    for name, base in (("lightgcn", 0.30), ("llmrec", 0.33)):
        for seed in (0, 1, 2):
            runs.append({"name": name, "seed": seed, "model": name, "ablation": "w/o-u" if name == "llmrec" else None,
                         "side": ["item_text"] if name == "llmrec" else [],
                         "metrics": {"recall@20": base + 0.01 * seed, "ndcg@20": base / 2},
                         "curve": [{"epoch": e, "loss": 1.0 / (e + 1), "val": {"recall@20": base * e / 3}}
                                   for e in range(4)]})
    return {
        "recipe": "demo", "config_hash": "abc", "dataset": {"users": 10, "items": 20},
        "stages": [{"stage": "prepare", "wall_s": 1.5, "skipped": False, "path": "x"},
                   {"stage": "train", "wall_s": None, "skipped": True, "path": "y"}],
        "runs": runs,
        "comparisons": [{"run": "llmrec", "baseline": "lightgcn", "metric": "recall@20", "mean_diff": 0.03,
                         "p_value": 0.004, "test": "paired t", "n": 3}],
        "augment": {"pairs": {"requests": 10, "valid_rate": 1.0, "retries": 0, "failures": 0,
                              "distributions": {"country": {"USA": 3, "France": 1}}}},
        "resolved_recipe": "[recipe]\nname = \"demo\"\n",
    }


def test_summarise_runs_mean_and_sample_std() -> None:
    rows = summarise_runs(_results()["runs"])
    assert [r["name"] for r in rows] == ["lightgcn", "llmrec"]
    mean, std = rows[0]["recall@20"]
    assert mean == pytest.approx(0.31) and std == pytest.approx(0.01)
    assert rows[1]["seeds"] == [0, 1, 2]


def test_markdown_has_every_section() -> None:
    md = render_markdown(_results())
    assert "| llmrec | 3 | 0.3400 ± 0.0100 | 0.1650 ± 0.0000 |" in md
    assert "| llmrec | lightgcn | recall@20 | +0.0300 | 0.004 | paired t | 3 |" in md
    assert "| USA | 3 |" in md and "skipped (done)" in md and '[recipe]' in md
    assert "| llmrec | llmrec | item_text | w/o-u |" in md and "| lightgcn | lightgcn | none | - |" in md


def test_html_is_self_contained_with_plots(tmp_path: Path) -> None:
    md, page = write_report(_results(), tmp_path / "r")
    text = page.read_text()
    assert md.exists() and text.startswith("<!DOCTYPE html>")
    assert text.count("<svg") >= 6 and text.count("polyline") == 4  # loss and validation curves, two runs each
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing loaded from elsewhere


def test_line_chart_skips_nan_and_empty() -> None:
    assert svg_line_chart({}, "t", "x", "y") == ""
    svg = svg_line_chart({"a": [(0, 1.0), (1, math.nan), (2, 3.0)]}, "t", "x", "y")
    assert svg.count(",") >= 2 and "nan" not in svg
