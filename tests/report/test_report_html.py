"""The HTML report: one self-contained file, charts as inline SVG with round ticks, responsive tables."""

from __future__ import annotations

import re

import pytest
from report_study import REAL, SMOKE, make_study

from llmrec_local.report import charts
from llmrec_local.report.stage import render_html


def _numbers(svg: str, axis: str) -> list[list[float]]:
    """Tick label values of `axis` ("x" or "y") per axes of a matplotlib SVG (text kept as text)."""
    out = []
    for block in re.split(r'<g id="[\w-]*axes_\d+">', svg)[1:]:
        labels = re.findall(rf'<g id="[\w-]*{axis}tick_\d+">.*?<text[^>]*>([^<]*)</text>', block, flags=re.S)
        values = [float(t.replace("%", "").replace("\u2212", "-").replace(",", "")) for t in labels
                  if re.fullmatch(r"[\u2212\-]?[\d.,]+%?", t)]
        if values:
            out.append(values)
    return out


def test_only_inline_svg_and_nothing_loaded_from_elsewhere() -> None:
    page = render_html(make_study(model=SMOKE, recipe_model="smoke"))
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 4
    assert "<img" not in page and "<script" not in page and "<link" not in page and "<?xml" not in page
    # Attribute values may only point inside the page (#ids), never to a file or the network.
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert refs and all(r.startswith("#") for r in refs), {r for r in refs if not r.startswith("#")}
    assert not re.search(r"url\(\s*['\"]?(?!#)", page)  # no CSS url() but fragment references
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the figures' element ids do not collide


def test_ticks_are_round_and_the_valid_rate_axis_ends_at_one() -> None:
    runs = make_study(gain=0.0213)["runs"]
    for svg in (charts.metric_bars(runs), charts.training_curves(runs)):
        for ticks in _numbers(svg, "y"):
            steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
            assert len(steps) == 1, ticks  # evenly spaced ...
            mantissa = f"{steps.pop():.1e}".split("e")[0]
            assert mantissa in ("1.0", "2.0", "2.5", "5.0"), ticks  # ... by 1, 2, 2.5 or 5 times a power of ten
    llm = charts.llm_jobs({"pairs": {"valid_rate": 1.0, "output_tokens_per_s": 196.15},
                           "profiles": {"valid_rate": 0.9967, "output_tokens_per_s": 3070.9}})
    rate_ticks = _numbers(llm, "y")[0]
    assert rate_ticks[0] == 0 and rate_ticks[-1] == 100  # percent of a rate in 0..1, nothing beyond


def test_time_chart_marks_skipped_stages() -> None:
    svg = charts.stage_times([{"stage": "prepare", "wall_s": 0.25}, {"stage": "train a", "wall_s": 492.4},
                              {"stage": "embed", "wall_s": 0.0, "skipped": True}])
    assert "skipped (already complete)" in svg and "492 s (8.2 min)" in svg and "0.25 s" in svg
    assert ">prepare</text>" in svg  # stage names are text on the axis


@pytest.mark.parametrize("model, shown", [(REAL, True), (SMOKE, False)])
def test_value_counts_only_for_real_models_and_collapsed(model: dict[str, str], shown: bool) -> None:
    page = render_html(make_study(model=model, recipe_model=model["alias"]))
    assert ("pairs: most frequent country" in page) is shown
    if shown:
        details = page[page.index("<details><summary>Most frequent generated values"):]
        assert details.index("pairs: most frequent country") < details.index("</details>")


def test_every_table_scrolls_inside_the_page() -> None:
    page = render_html(make_study(model=REAL))
    assert page.count("<table>") == page.count("<div class='table-wrap'><table>") > 0
    assert ".table-wrap{max-width:100%;overflow-x:auto" in page
