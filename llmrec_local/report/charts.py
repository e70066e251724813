"""The report's charts, drawn with matplotlib and returned as inline SVG strings.

Figures are built with `matplotlib.figure.Figure` and saved by its SVG canvas: no pyplot, no global figure
state and never an interactive backend, so rendering works headless and in worker threads. Text stays text
(``svg.fonttype = "none"``): the page is searchable, screen readers read the labels and the file stays small.
Every function returns "" when it has nothing to draw, so partial results render without gaps or errors.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .runs import curve_value, summarise_runs

#: Metrics drawn as bars (the paper's two headline metrics).
BAR_METRICS = ("recall@20", "ndcg@20")
#: Colour of each pipeline stage kind in the time chart.
_STAGE_COLOURS = {"prepare": "#8c564b", "candidates": "#9467bd", "augment": "#d62728", "embed": "#ff7f0e",
                  "tune": "#17becf", "train": "#1f77b4", "evaluate": "#2ca02c", "report": "#7f7f7f"}
_SKIPPED = "#c7c7c7"
#: Widest figure (inches): the page's content column is about 1100 px, wider charts would shrink their text.
_MAX_WIDTH = 10.5
_STYLE = {
    "svg.fonttype": "none",
    # DejaVu Sans is what matplotlib measures labels with; Verdana has close metrics where it is missing.
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Verdana"], "font.size": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.35,
    "axes.axisbelow": True, "axes.titlesize": 10, "axes.titleweight": "bold", "figure.titlesize": 11,
}


def _ticks(n: int = 6, integer: bool = False) -> MaxNLocator:
    """Round tick positions (1, 2, 2.5, 5 times a power of ten), never labels like 0.0655."""
    return MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10], integer=integer, min_n_ticks=3)


def _svg(name: str, label: str, draw: Callable[[Figure], None], size: tuple[float, float]) -> str:
    """Draw a figure of `size` inches with `draw` and return it as an inline ``<svg>`` element.

    `name` salts matplotlib's hashed ids (reproducible output) and prefixes every id, so that the page's figures
    never share one; the XML prologue and the RDF metadata (which names external URLs) are dropped; the fixed
    size becomes a max-width, so the chart shrinks with the page but never grows blurry-large.
    """
    with mpl.rc_context({**_STYLE, "svg.hashsalt": name}):
        fig = Figure(figsize=size, layout="constrained")
        draw(fig)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    # Every figure numbers its groups from figure_1, axes_1...: prefix ids and references to keep them unique.
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    width = float(re.search(r'width="([\d.]+)pt"', svg).group(1))
    svg = re.sub(r'width="[\d.]+pt" height="[\d.]+pt"',
                 f'style="width:100%;max-width:{width * 4 / 3:.0f}px;height:auto" role="img" '
                 f'aria-label="{html.escape(label)}" id="chart-{name}"', svg, count=1)
    return svg.strip()


def _colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per system, the same in every chart (matplotlib's tab10 cycle, in first-seen order)."""
    cycle = mpl.color_sequences["tab10"]
    return {name: to_hex(cycle[i % len(cycle)]) for i, name in enumerate(names)}


def _name_ticks(ax: Axes, names: Sequence[str]) -> None:
    """System or job names under bars, slanted only when they would not fit side by side."""
    ax.set_xticks(range(len(names)), names)
    # Width per bar (points) against the longest label at ~0.65 em per character of the 9 pt font.
    across = ax.get_subplotspec().get_gridspec().ncols
    slot = ax.figure.get_figwidth() * 72 * 0.8 / across / len(names)
    if max(len(n) for n in names) * 5.8 > slot:
        ax.tick_params(axis="x", labelrotation=25)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def metric_bars(runs: Sequence[Mapping[str, Any]]) -> str:
    """Test Recall@20 and NDCG@20 per system: bar = mean over seeds, whisker = ± sample std, dots = seeds."""
    summary = summarise_runs(runs)
    metrics = [m for m in BAR_METRICS if any(m in row for row in summary)]
    if not metrics:
        return ""
    names = [row["name"] for row in summary]
    colours = _colours(names)
    seeds = {name: [r for r in runs if r["name"] == name] for name in names}
    n_seeds = max(len(v) for v in seeds.values())

    # Side by side while both panels fit the page's width (~10.5 in); one above the other for many systems.
    side_by_side = 1.6 + 1.3 * len(names) * len(metrics) <= _MAX_WIDTH
    shape = (1, len(metrics)) if side_by_side else (len(metrics), 1)

    def draw(fig: Figure) -> None:
        for ax, metric in zip(fig.subplots(*shape, squeeze=False).flat, metrics):
            rows = [row for row in summary if metric in row]
            top = 0.0
            for i, row in enumerate(rows):
                mean, std = row[metric]
                ax.bar(i, mean, width=0.62, color=colours[row["name"]], alpha=0.85)
                if std > 0:
                    ax.errorbar(i, mean, yerr=std, color="#222", capsize=5, linewidth=1.2)
                values = [float(r["metrics"][metric]) for r in seeds[row["name"]] if metric in r["metrics"]]
                # Seeds spread evenly across the bar (deterministic, unlike random jitter).
                offsets = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
                ax.scatter(i + offsets, values, s=16, color="#111", zorder=3, edgecolor="white", linewidth=0.6)
                peak = max([mean + std, *values])
                ax.annotate(f"{mean:.3f}", (i, peak), xytext=(0, 4), textcoords="offset points", ha="center",
                            va="bottom", fontsize=8)
                top = max(top, peak)
            ax.set_ylim(0, top * 1.18 or 1.0)
            ax.yaxis.set_major_locator(_ticks())
            ax.grid(axis="x", visible=False)
            ax.set_title(f"Test {metric}")
            _name_ticks(ax, [row["name"] for row in rows])
        fig.suptitle(f"Test metrics: bar = mean, whisker = ± std, dots = the {n_seeds} seeds" if n_seeds > 1
                     else "Test metrics (a single seed: no spread)")

    width = 1.6 + 1.3 * len(names) * (len(metrics) if side_by_side else 1)
    return _svg("metrics", "Test Recall@20 and NDCG@20 per system with seed spread", draw,
                (min(max(6.0, width), _MAX_WIDTH), 3.4 * shape[0]))


def training_curves(runs: Sequence[Mapping[str, Any]]) -> str:
    """Training loss and validation Recall@20 per epoch: one colour per system, one line per seed."""
    curves = [r for r in runs if r.get("curve")]
    if not curves:
        return ""
    names = list(dict.fromkeys(r["name"] for r in curves))
    colours = _colours(list(dict.fromkeys(r["name"] for r in runs)))
    panels = [("loss", "training loss", "loss"), ("recall@20", "validation recall@20", "recall@20")]

    def series(run: Mapping[str, Any], key: str) -> tuple[list[float], list[float]]:
        points = [(float(p["epoch"]), curve_value(p, key)) for p in run["curve"]]
        points = [(x, float(y)) for x, y in points if y is not None and not math.isnan(float(y))]
        return [x for x, _ in points], [y for _, y in points]

    def draw(fig: Figure) -> None:
        for ax, (key, title, ylabel) in zip(fig.subplots(1, 2), panels):
            for run in curves:
                xs, ys = series(run, key)
                if xs:
                    ax.plot(xs, ys, color=colours[run["name"]], linewidth=1.3, alpha=0.8,
                            marker="o" if key != "loss" else None, markersize=2.5)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_locator(_ticks(integer=True))
            ax.yaxis.set_major_locator(_ticks())
        handles = [Line2D([], [], color=colours[n], linewidth=2, label=n) for n in names]
        fig.legend(handles=handles, loc="outside right upper", title="system (a line per seed)", frameon=False)

    return _svg("curves", "Training loss and validation Recall@20 per epoch, per system and seed", draw, (9.0, 3.4))


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    return f"{s:.0f} s ({s / 60:.1f} min)"


def stage_times(stages: Sequence[Mapping[str, Any]]) -> str:
    """Wall time of every stage as horizontal bars in execution order; skipped stages are grey and labelled."""
    if not stages:
        return ""
    labels = [str(s["stage"]) for s in stages]
    walls = [float(s.get("wall_s") or 0.0) for s in stages]
    longest = max(walls) or 1.0

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        y = np.arange(len(stages))
        colours = [_SKIPPED if s.get("skipped") else _STAGE_COLOURS.get(str(s["stage"]).split()[0], "#1f77b4")
                   for s in stages]
        ax.barh(y, walls, color=colours, height=0.7,
                hatch=["//" if s.get("skipped") else "" for s in stages], edgecolor="white", linewidth=0)
        for i, (s, wall) in enumerate(zip(stages, walls)):
            text = "skipped (already complete)" if s.get("skipped") else _seconds(wall)
            ax.annotate(text, (wall, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8,
                        color="#555" if s.get("skipped") else "#222")
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        # Room on the right for the longest bar's label.
        ax.set_xlim(0, longest * 1.3)
        ax.xaxis.set_major_locator(_ticks())
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("wall time (s)")
        total = sum(w for s, w in zip(stages, walls) if not s.get("skipped"))
        ax.set_title(f"Time per stage (total {_seconds(total)})")

    # A fixed height per stage keeps the labels apart however many stages there are.
    return _svg("stages", "Wall time per pipeline stage", draw, (8.0, 0.9 + 0.24 * len(stages)))


def llm_jobs(augment: Mapping[str, Mapping[str, Any]]) -> str:
    """Per augment job: the LLM's valid-output rate (axis 0 to 1) and its output tokens per second."""
    jobs = [j for j, s in augment.items() if s.get("valid_rate") is not None or s.get("output_tokens_per_s")]
    if not jobs:
        return ""

    def draw(fig: Figure) -> None:
        rate_ax, speed_ax = fig.subplots(1, 2)
        x = np.arange(len(jobs))
        rates = [float(augment[j].get("valid_rate") or 0.0) for j in jobs]
        rate_ax.bar(x, rates, width=0.6, color="#2ca02c")
        for i, rate in enumerate(rates):
            # Inside the bar when it is tall, so the label never pushes past the axis' 100%.
            inside = rate > 0.85
            rate_ax.annotate(f"{rate:.1%}", (i, rate), xytext=(0, -12 if inside else 3), textcoords="offset points",
                             ha="center", fontsize=8, color="white" if inside else "#222")
        rate_ax.set_ylim(0, 1)
        rate_ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        rate_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        rate_ax.set_title("valid-output rate")
        speeds = [float(augment[j].get("output_tokens_per_s") or 0.0) for j in jobs]
        speed_ax.bar(x, speeds, width=0.6, color="#ff7f0e")
        for i, speed in enumerate(speeds):
            speed_ax.annotate(f"{speed:,.0f}", (i, speed), xytext=(0, 3), textcoords="offset points", ha="center",
                              fontsize=8)
        speed_ax.set_ylim(0, (max(speeds) or 1.0) * 1.15)
        speed_ax.yaxis.set_major_locator(_ticks())
        speed_ax.set_title("output tokens per second")
        for ax in (rate_ax, speed_ax):
            ax.grid(axis="x", visible=False)
            _name_ticks(ax, jobs)
        fig.suptitle("LLM augmentation per job")

    return _svg("llm", "LLM valid-output rate and output tokens per second per augment job", draw,
                (min(max(8.0, 2.6 + 2.4 * len(jobs)), _MAX_WIDTH), 3.0))


def tuning_trials(tuning: Mapping[str, Mapping[str, Any]]) -> str:
    """The validation search of each tuned run: one dot per trial (filled = complete, hollow = pruned at its last
    evaluated epoch) and the best complete value so far as a step line."""
    searched = {name: found["trials"] for name, found in tuning.items() if found.get("trials")}
    if not searched:
        return ""
    colours = _colours(list(searched))
    metric = next(iter(tuning.values()))["study"].get("metric", "validation metric")

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        for name, trials in searched.items():
            colour = colours[name]
            for state, face in (("COMPLETE", colour), ("PRUNED", "none")):
                points = [(t["number"], t["value"]) for t in trials if t["state"] == state and t["value"] is not None]
                if points:
                    ax.scatter(*zip(*points), s=22, facecolors=face, edgecolors=colour, linewidths=1.1, zorder=3)
            best, steps = -math.inf, []
            for t in sorted(trials, key=lambda t: t["number"]):
                if t["state"] == "COMPLETE" and t["value"] is not None:
                    best = max(best, t["value"])
                if best > -math.inf:
                    steps.append((t["number"], best))
            if steps:
                ax.step(*zip(*steps), where="post", color=colour, linewidth=1.2, alpha=0.8)
        ax.set_xlabel("trial")
        ax.set_ylabel(f"validation {metric}")
        ax.xaxis.set_major_locator(_ticks(integer=True))
        ax.yaxis.set_major_locator(_ticks())
        handles = [Line2D([], [], color=colours[n], marker="o", linewidth=1.2, label=n) for n in searched]
        handles += [Line2D([], [], color="#555", marker="o", markerfacecolor="none", linewidth=0, label="pruned")]
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
        ax.set_title("Validation tuning: value per trial and best so far")

    return _svg("tuning", "Validation value of every tuning trial per system, with the best value so far", draw,
                (8.0, 3.2))


def all_charts(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(caption, svg) of every chart the results allow, in page order."""
    runs = results.get("runs") or []
    charts = [
        ("Test metrics per system (mean ± std over seeds, one dot per seed).", metric_bars(runs)),
        ("Training loss and validation Recall@20 per epoch.", training_curves(runs)),
        ("Validation tuning: every trial (hollow = pruned) and the best value so far.",
         tuning_trials(results.get("tuning") or {})),
        ("LLM augmentation: valid-output rate and throughput per job.", llm_jobs(results.get("augment") or {})),
        ("Wall time per pipeline stage.", stage_times(results.get("stages") or [])),
    ]
    return [(caption, svg) for caption, svg in charts if svg]
