"""Markdown and self-contained HTML reports of a pipeline run (no plotting library: plots are inline SVG).

Input: the `StudyResults` mapping the pipeline runner collects (schema below); output: ``report.md`` and
``report.html`` in the report folder. The HTML embeds everything (CSS, SVG), so it can be mailed or archived.

StudyResults (JSON-like dict):
    recipe: str (name); config_hash: str; resolved_recipe: str (TOML text)
    dataset: {"users", "items", "interactions", "train", "val", "test", ...}
    stages: [{"stage", "wall_s", "skipped": bool, "path"}]
    runs: [{"name", "seed", "metrics": {"recall@20": float, ...}, "curve": [{"epoch", "loss", "val_recall@20", ...}],
            "train_wall_s"}]
    comparisons: [{"run", "baseline", "metric", "mean_diff", "p_value", "test", "n"}]
    augment: {job: {"requests", "valid", "valid_rate", "retries", "failures", "prompt_tokens", "completion_tokens",
                    "requests_per_s", "output_tokens_per_s", "prefix_cache_hit_rate", "distributions": {...}}}
    environment: {"libraries": {...}, "hardware": {...}}
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HEADLINE_METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@50", "ndcg@50", "precision@20")
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def summarise_runs(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group runs by name and give mean and sample std of every metric over seeds.

    Returns one row per run name, in first-seen order: {"name", "seeds": [...], "<metric>": (mean, std)}.
    std is 0 for a single seed.
    """
    order: list[str] = []
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        if run["name"] not in grouped:
            order.append(run["name"])
        grouped.setdefault(run["name"], []).append(run)
    rows = []
    for name in order:
        group = grouped[name]
        row: dict[str, Any] = {"name": name, "seeds": [r["seed"] for r in group], "model": group[0].get("model"),
                               "side": group[0].get("side"), "ablation": group[0].get("ablation")}
        for metric in group[0]["metrics"]:
            values = [float(r["metrics"][metric]) for r in group]
            row[metric] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        rows.append(row)
    return rows


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None or math.isnan(p) else f"{p:.2g}"


def _metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    present = {k for row in rows for k in row if "@" in k}
    return [m for m in HEADLINE_METRICS if m in present]


def _tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table in the report, shared by the Markdown and HTML renderers."""
    tables = []
    ds = results.get("dataset") or {}
    if ds:
        tables.append(("Dataset", ["quantity", "value"], [[k, _cell(v)] for k, v in ds.items()]))
    summary = summarise_runs(results.get("runs", []))
    if summary:
        cols = _metric_columns(summary)
        rows = [[r["name"], str(len(r["seeds"]))] + [f"{_fmt(r[c][0])} ± {_fmt(r[c][1])}" for c in cols]
                for r in summary]
        tables.append(("Metrics (test split, mean ± std over seeds)", ["run", "seeds", *cols], rows))
        if any(r.get("model") for r in summary):
            # What distinguishes the systems: model, side inputs and the paper ablation applied (if any).
            rows = [[r["name"], str(r.get("model") or ""), ", ".join(r.get("side") or []) or "none",
                     r.get("ablation") or "-"] for r in summary]
            tables.append(("Systems and ablations", ["run", "model", "side inputs", "ablation"], rows))
    comps = results.get("comparisons") or []
    if comps:
        rows = [[c["run"], c["baseline"], c["metric"], f"{c['mean_diff']:+.4f}", _p(c.get("p_value")),
                 c.get("test", ""), str(c.get("n", ""))] for c in comps]
        tables.append(("Significance against the baseline (paired)",
                       ["run", "baseline", "metric", "mean diff", "p-value", "test", "pairs"], rows))
    aug = results.get("augment") or {}
    if aug:
        keys = ["requests", "valid_rate", "retries", "failures", "prompt_tokens", "completion_tokens",
                "requests_per_s", "output_tokens_per_s", "prefix_cache_hit_rate", "wall_s", "usd_at_paper_prices"]
        rows = [[job] + [_cell(stats.get(k)) for k in keys] for job, stats in aug.items()]
        tables.append(("LLM augmentation", ["job", *keys], rows))
        for job, stats in aug.items():
            for field, dist in (stats.get("distributions") or {}).items():
                top = sorted(dist.items(), key=lambda kv: -kv[1])[:10]
                tables.append((f"{job}: most frequent {field}", [field, "count"], [[k, str(v)] for k, v in top]))
    stages = results.get("stages") or []
    if stages:
        rows = [[s["stage"], "skipped (done)" if s.get("skipped") else _fmt(s.get("wall_s"), 1), str(s.get("path", ""))]
                for s in stages]
        tables.append(("Time per stage (s)", ["stage", "wall s", "artifact"], rows))
    env = results.get("environment") or {}
    if env:
        rows = [[k, str(v)] for k, v in {**env.get("hardware", {}), **env.get("libraries", {})}.items()]
        tables.append(("Environment", ["item", "value"], rows))
    return tables


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return _fmt(v, 4) if abs(v) < 10 else f"{v:.1f}"
    return "n/a" if v is None else str(v)


def render_markdown(results: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown (tables only; the plots are in the HTML version)."""
    lines = [f"# llmrec_local report: {results.get('recipe', '?')}", "",
             f"Recipe hash `{results.get('config_hash', '?')}`. Metrics are full-ranking over all items with "
             "training (and validation) items masked; models were selected on the validation split.", ""]
    for title, header, rows in _tables(results):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    if results.get("resolved_recipe"):
        lines += ["## Resolved recipe", "", "```toml", results["resolved_recipe"].rstrip(), "```", ""]
    return "\n".join(lines)


def svg_line_chart(series: Mapping[str, Sequence[tuple[float, float]]], title: str, xlabel: str, ylabel: str,
                   width: int = 520, height: int = 300) -> str:
    """An SVG line chart of named (x, y) series, with axes, 5 ticks each and a legend."""
    points = [p for s in series.values() for p in s if not math.isnan(p[1])]
    if not points:
        return ""
    left, right, top, bottom = 60, 150, 30, 45
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + abs(y0) * 0.1 + 1e-9)
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda y: height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#333"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>']
    for i in range(5):
        xv, yv = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        out.append(f'<text x="{sx(xv):.1f}" y="{height - bottom + 15}" font-size="10" text-anchor="middle">'
                   f"{xv:.3g}</text>")
        out.append(f'<text x="{left - 5}" y="{sy(yv) + 3:.1f}" font-size="10" text-anchor="end">{yv:.3g}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" font-size="11" text-anchor="middle">'
               f"{html.escape(xlabel)}</text>")
    out.append(f'<text x="14" y="{(top + height - bottom) / 2}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 14 {(top + height - bottom) / 2})">{html.escape(ylabel)}</text>')
    for k, (name, pts) in enumerate(series.items()):
        colour = _PALETTE[k % len(_PALETTE)]
        good = [p for p in pts if not math.isnan(p[1])]
        if good:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{path}"/>')
        ly = top + 14 * k
        out.append(f'<rect x="{width - right + 10}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{width - right + 24}" y="{ly + 9}" font-size="11">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_bar_chart(bars: Sequence[tuple[str, float, float]], title: str, width: int = 520, height: int = 300) -> str:
    """An SVG bar chart of (label, mean, std) with ±std error bars."""
    if not bars:
        return ""
    left, right, top, bottom = 60, 20, 30, 60
    ymax = max(m + s for _, m, s in bars) * 1.1 or 1.0
    slot = (width - left - right) / len(bars)
    sy = lambda y: height - bottom - y / ymax * (height - top - bottom)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#333"/>']
    for i in range(5):
        yv = ymax * i / 4
        out.append(f'<text x="{left - 5}" y="{sy(yv) + 3:.1f}" font-size="10" text-anchor="end">{yv:.3g}</text>')
    for k, (label, mean, std) in enumerate(bars):
        x = left + k * slot + slot * 0.2
        w = slot * 0.6
        colour = _PALETTE[k % len(_PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="{sy(mean):.1f}" width="{w:.1f}" height="{sy(0) - sy(mean):.1f}" '
                   f'fill="{colour}"><title>{html.escape(label)}: {mean:.4f} ± {std:.4f}</title></rect>')
        cx = x + w / 2
        out.append(f'<line x1="{cx:.1f}" y1="{sy(mean + std):.1f}" x2="{cx:.1f}" y2="{sy(max(mean - std, 0)):.1f}" '
                   'stroke="#000"/>')
        out.append(f'<text x="{cx:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">'
                   f"{html.escape(label)}</text>")
        out.append(f'<text x="{cx:.1f}" y="{sy(mean + std) - 4:.1f}" font-size="10" text-anchor="middle">'
                   f"{mean:.3f}</text>")
    out.append("</svg>")
    return "".join(out)


def _curve_value(point: Mapping[str, Any], key: str) -> float | None:
    """`key` of one train_log entry: top level (loss) or inside its ``val`` metrics (evaluated epochs only)."""
    if key in point:
        return point[key]
    return (point.get("val") or {}).get(key)


def _plots(results: Mapping[str, Any]) -> list[str]:
    plots = []
    summary = summarise_runs(results.get("runs", []))
    for metric in ("recall@20", "ndcg@20"):
        bars = [(r["name"], *r[metric]) for r in summary if metric in r]
        plots.append(svg_bar_chart(bars, f"Test {metric} (mean ± std over seeds)"))
    curves = [r for r in results.get("runs", []) if r.get("curve")]
    first_seed: dict[str, Mapping[str, Any]] = {}
    for r in curves:
        first_seed.setdefault(r["name"], r)
    for key, label in (("loss", "training loss"), ("recall@20", "validation recall@20")):
        series = {name: [(float(p["epoch"]), float(_curve_value(p, key))) for p in r["curve"]
                         if _curve_value(p, key) is not None] for name, r in first_seed.items()}
        plots.append(svg_line_chart({k: v for k, v in series.items() if v}, f"{label} (first seed)", "epoch", label))
    stages = [s for s in results.get("stages", []) if not s.get("skipped") and s.get("wall_s")]
    plots.append(svg_bar_chart([(s["stage"], float(s["wall_s"]), 0.0) for s in stages], "Time per stage (s)"))
    aug = results.get("augment") or {}
    plots.append(svg_bar_chart([(job, float(s.get("valid_rate") or 0.0), 0.0) for job, s in aug.items()],
                               "LLM valid-output rate per job"))
    return [p for p in plots if p]


def render_html(results: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page: plots (inline SVG) then every table."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>llmrec_local report: {html.escape(str(results.get('recipe', '?')))}</title>",
             "<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
             "font-size:13px;text-align:left}th{background:#f0f0f0}.plots{display:flex;flex-wrap:wrap;gap:12px}"
             "pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}</style></head><body>",
             f"<h1>llmrec_local report: {html.escape(str(results.get('recipe', '?')))}</h1>",
             f"<p>Recipe hash <code>{html.escape(str(results.get('config_hash', '?')))}</code>. Full-ranking "
             "metrics over all items, training (and validation) items masked, models selected on validation.</p>",
             "<div class='plots'>", *_plots(results), "</div>"]
    for title, header, rows in _tables(results):
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    if results.get("resolved_recipe"):
        parts.append(f"<h2>Resolved recipe</h2><pre>{html.escape(results['resolved_recipe'])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(render_markdown(results), encoding="utf-8")
    page.write_text(render_html(results), encoding="utf-8")
    return md, page
