"""Markdown and self-contained HTML reports of a pipeline run.

Input: the `StudyResults` mapping the pipeline runner collects (schema below); output: ``report.md`` and
``report.html`` in the report folder. The HTML embeds everything (CSS, matplotlib charts as inline SVG), so it
can be mailed, archived and opened offline. Both files open with the same headline finding and, when a smoke
or fake component produced the inputs, the same warning (`llmrec_local.report.findings`).

StudyResults (JSON-like dict):
    recipe: str (name); config_hash: str; resolved_recipe: str (TOML text)
    dataset: {"users", "items", "interactions", "train", "val", "test", ...}
    stages: [{"stage", "wall_s", "skipped": bool, "path"}]
    runs: [{"name", "seed", "metrics": {"recall@20": float, ...}, "curve": [{"epoch", "loss", "val": {...}}],
            "model", "side", "ablation", "selection": "val" | "test" | "last" (model selection; missing = "val")}]
    comparisons: [{"run", "baseline", "metric", "mean_diff", "p_value", "p_holm" (Holm-adjusted), "test", "n"}]
    tuning: {run: {"study": study.json of its tune artifact, "trials": its trials table as rows}}
            (`llmrec_local.artifacts.tune`)
    augment: {job: {"model": {"alias", "backend", "model_id"}, "requests", "valid", "valid_rate", "retries",
                    "failures", "prompt_tokens", "completion_tokens", "requests_per_s", "output_tokens_per_s",
                    "prefix_cache_hit_rate", "wall_s", "usd_at_paper_prices", "distributions": {...},
                    the token plan beside the measurement (`llmrec_local.augment.plan`): "plan_requests",
                    "sent_requests", "plan_prompt_tokens", "sent_prompt_tokens", "plan_output_tokens_max",
                    "plan_output_tokens_expected", "sent_output_tokens", "plan_prefix_cache_share",
                    "sent_prefix_cache_share", "plan_generate_s", "sent_generate_s"}}
    inspection: {"agreement": {"users", "liked_rate", "random_rate", ...} | None, "notes": [str], "users": [...],
                 "text": str (the inspector's side-by-side view)} or {"error": str}
                 (`llmrec_local.augment.inspect.to_results`)
    side_texts: {source: {"text_lengths": {"texts", "min", "p10", "p50", "p90", "max", "mean"}, and for free text
                 from a file "file", "rows", "matched_ids", "unmatched_ids", "unmatched_examples", "entities",
                 "entities_with_text", "coverage"}}
    environment: {"libraries": {...}, "hardware": {...}}
Every key may be missing: a report of partial results shows what there is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .findings import (BANNER_TITLE, UNDERTRAINED_TITLE, banner_text, comparison_verdict, headline, synthetic_inputs,
                       synthetic_llm_jobs, undertrained)
from .runs import summarise_runs

__all__ = ["render_html", "render_markdown", "summarise_runs", "write_report"]

HEADLINE_METRICS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@50", "ndcg@50", "precision@20")
#: Rows of the LLM table, one per statistic (jobs are the columns: a dozen statistics do not fit across).
_AUGMENT_ROWS = ("model", "requests", "valid", "valid_rate", "retries", "failures", "prompt_tokens",
                 "completion_tokens", "requests_per_s", "output_tokens_per_s", "prefix_cache_hit_rate", "wall_s",
                 "usd_at_paper_prices",
                 # the token plan (before the job) beside the measured figures of the requests sent (attempt 0)
                 "plan_requests", "sent_requests", "plan_prompt_tokens", "sent_prompt_tokens",
                 "plan_output_tokens_max", "plan_output_tokens_expected", "sent_output_tokens",
                 "plan_prefix_cache_share", "sent_prefix_cache_share", "plan_generate_s", "sent_generate_s")


@dataclass
class Table:
    """One table of the report, shared by both renderers; `collapsed` tables sit in a closed <details> in HTML."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    collapsed: bool = False


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None or math.isnan(p) else f"{p:.2g}"


def _cell(v: Any) -> str:
    if isinstance(v, Mapping):  # an augment job's model record
        return str(v.get("model_id") or v.get("alias") or "n/a")
    if isinstance(v, float):
        return _fmt(v, 4) if abs(v) < 10 else f"{v:.1f}"
    return "n/a" if v is None else str(v)


def _setting(v: Any) -> str:
    """A tuned setting: 3 significant digits (learning rates span decades), whole numbers without a decimal."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.3g}"
    return "n/a" if v is None else str(v)


def _metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    present = {k for row in rows for k in row if "@" in k}
    return [m for m in HEADLINE_METRICS if m in present]


def _tables(results: Mapping[str, Any]) -> list[Table]:
    """Every table of the report, in page order."""
    tables = []
    ds = results.get("dataset") or {}
    if ds:
        tables.append(Table("Dataset", ["quantity", "value"], [[k, _cell(v)] for k, v in ds.items()]))
    summary = summarise_runs(results.get("runs") or [])
    if summary:
        cols = _metric_columns(summary)
        # One seed has no spread: its "± 0.0000" would read as a perfectly stable system.
        rows = [[r["name"], str(len(r["seeds"]))]
                + [f"{_fmt(r[c][0])} ± {_fmt(r[c][1])}" if len(r["seeds"]) > 1 else _fmt(r[c][0]) for c in cols]
                for r in summary]
        tables.append(Table("Metrics (test split, mean ± std over seeds)", ["run", "seeds", *cols], rows))
        if any(r.get("model") for r in summary):
            # What distinguishes the systems: model, side inputs, the paper ablation applied (if any), and how the
            # reported epoch was chosen.
            rows = [[r["name"], str(r.get("model") or ""), ", ".join(r.get("side") or []) or "none",
                     r.get("ablation") or "-", _SELECTION.get(r.get("selection") or "val", str(r.get("selection")))]
                    for r in summary]
            tables.append(Table("Systems and ablations", ["run", "model", "side inputs", "ablation",
                                                          "model selection"], rows))
    comps = results.get("comparisons") or []
    if comps:
        # The verdict reads the Holm-adjusted p-value: with several runs against one baseline, raw p-values
        # below 0.05 would turn up by chance.
        rows = [[c["run"], c["baseline"], c["metric"], f"{c['mean_diff']:+.4f}", _p(c.get("p_value")),
                 _p(c.get("p_holm")), c.get("test", ""), str(c.get("n", "")), comparison_verdict(c)] for c in comps]
        tables.append(Table("Significance against the baseline (paired; Holm over the runs per metric and test)",
                            ["run", "baseline", "metric", "mean diff", "p-value", "p (Holm)", "test", "pairs",
                             "verdict"], rows))
    tables += _tuning_tables(results.get("tuning") or {})
    aug = results.get("augment") or {}
    if aug:
        keys = [k for k in _AUGMENT_ROWS if any(k in stats for stats in aug.values())]
        tables.append(Table("LLM augmentation (per job)", ["statistic", *aug],
                            [[k] + [_cell(stats.get(k)) for stats in aug.values()] for k in keys]))
        # A random model's value counts are noise: they would only fill the page.
        synthetic = synthetic_llm_jobs(results)
        for job, stats in aug.items():
            if job in synthetic:
                continue
            for name, dist in (stats.get("distributions") or {}).items():
                if "text_lengths" in dist:  # free text: its lengths, not value counts of distinct texts
                    tables.append(_lengths_table(f"{job}: {name} (free text)", {name: dist["text_lengths"]}))
                    continue
                top = sorted(dist.items(), key=lambda kv: -kv[1])[:10]
                tables.append(Table(f"{job}: most frequent {name}", [name, "count"],
                                    [[k, str(v)] for k, v in top], collapsed=True))
    texts = results.get("side_texts") or {}
    if texts:
        tables.append(_lengths_table("Text side inputs: length in characters", {
            s: t["text_lengths"] for s, t in texts.items()}))
        files = {s: t for s, t in texts.items() if "matched_ids" in t}
        if files:
            rows = [[s, str(t.get("file", "")), str(t["rows"]), str(t["matched_ids"]), str(t["unmatched_ids"]),
                     ", ".join(map(str, t.get("unmatched_examples") or [])) or "-",
                     f"{t['entities_with_text']} / {t['entities']} ({t['coverage']:.1%})"] for s, t in files.items()]
            tables.append(Table("Free-text files: alignment with the dataset's ids",
                                ["source", "file", "rows", "ids matched", "ids unmatched", "unmatched e.g.",
                                 "entities with text"], rows))
    agree = (results.get("inspection") or {}).get("agreement")
    if agree:
        tables.append(_agreement_table(agree))
    stages = results.get("stages") or []
    if stages:
        rows = [[s["stage"], "skipped (done)" if s.get("skipped") else _fmt(s.get("wall_s"), 2),
                 str(s.get("path", ""))] for s in stages]
        tables.append(Table("Time per stage (s)", ["stage", "wall s", "artifact"], rows))
    env = results.get("environment") or {}
    if env:
        rows = [[k, str(v)] for k, v in {**env.get("hardware", {}), **env.get("libraries", {})}.items()]
        tables.append(Table("Environment", ["item", "value"], rows))
    return tables


def _tuning_tables(tuning: Mapping[str, Mapping[str, Any]]) -> list[Table]:
    """The validation searches: one summary row per tuned run, every trial, and the parameter importance."""
    if not tuning:
        return []
    studies = {name: found["study"] for name, found in tuning.items()}
    metric = next(iter(studies.values())).get("metric", "?")
    rows = [[name, str(s["budget"]), str(s["counts"].get("COMPLETE", 0)), str(s["counts"].get("PRUNED", 0)),
             str(s["counts"].get("FAIL", 0)), _fmt(s["best"]["value"]), str(s["best"]["trial"]),
             ", ".join(f"{k} = {_setting(v)}" for k, v in s["best"]["params"].items())] for name, s in studies.items()]
    tables = [Table(f"Validation tuning (selected on validation {metric}; test never seen)",
                    ["run", "budget", "complete", "pruned", "failed", f"best val {metric}", "best trial",
                     "best settings (applied to every seed)"], rows)]
    for name, found in tuning.items():
        keys = sorted({k for t in found["trials"] for k in t["params"]})
        tables.append(Table(f"Tuning trials: {name}", ["trial", "state", f"val {metric}", "last epoch", *keys],
                            [[str(t["number"]), t["state"].lower(), _fmt(t["value"]), str(t["last_epoch"])]
                             + [_setting(t["params"].get(k)) for k in keys] for t in found["trials"]]))
    rows = []
    for name, s in studies.items():
        rows += [[name, k, _fmt(v, 3)] for k, v in (s.get("importance") or {}).items()]
        if s.get("importance_note"):
            rows.append([name, "(note)", str(s["importance_note"])])
    tables.append(Table("Parameter importance (Optuna PED-ANOVA over the complete trials)",
                        ["run", "setting", "importance"], rows))
    return tables
def _lengths_table(title: str, lengths: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per text source: how many texts and the distribution of their lengths (characters)."""
    cols = ["texts", "min", "p10", "p50", "p90", "max", "mean"]
    return Table(title, ["source", *cols], [[name, *(_cell(d.get(c)) for c in cols)] for name, d in lengths.items()])


def _agreement_table(agree: Mapping[str, Any]) -> Table:
    """The inspector's label-free agreement statistics: how often the LLM's liked (disliked) item is one the user
    interacted with in validation/test, against a uniform pick among the candidates and a content-blind pick at the
    LLM's positions."""
    n, base = agree["users"], agree["random_rate"]

    def row(label: str, rate: float | None, hits: int | None = None, p: float | None = None) -> list[str]:
        ratio = f"{rate / base:.2f}x" if rate is not None and base else "n/a"
        return [label, _fmt(rate), f"{hits}/{n}" if hits is not None else "", ratio, _p(p) if p is not None else ""]

    rows = [row("LLM-liked item", agree["liked_rate"], agree["liked_hits"], agree["liked_p_value"]),
            row("random candidate (exact expectation)", base),
            row("LLM-disliked item", agree["disliked_rate"], agree["disliked_hits"], agree["disliked_p_value"]),
            row("content-blind pick at the LLM's liked positions", agree.get("liked_position_matched_rate")),
            row("content-blind pick at the LLM's disliked positions", agree.get("disliked_position_matched_rate"))]
    return Table(f"LLM pairs against later interactions ({n} users; no labels needed)",
                 ["pick", "interacted with later", "hits", "vs random", "p (one-sided)"], rows)


def _inspection_markdown(results: Mapping[str, Any]) -> list[str]:
    """A short section: where the sampled users' view is, the inspector's notes or its error."""
    found = results.get("inspection")
    if not found:
        return []
    lines = ["## LLM outputs of sampled users", ""]
    if found.get("error"):
        return lines + [f"The inspection failed: {found['error']}", ""]
    lines.append(f"{len(found.get('users') or [])} sampled users (history, candidates, the chosen pair, profile, "
                 "attributes, failures) are shown side by side in report.html; more with `python -m "
                 "llmrec_local.augment inspect --out <workdir> --users 20 --failures`. The agreement table above "
                 "compares the LLM's choices with a random candidate.")
    notes = found.get("notes") or []
    return lines + ([""] + [f"- {note}" for note in notes] if notes else []) + [""]


def _inspection_html(results: Mapping[str, Any]) -> str:
    """The inspector's text view in a collapsed section (HTML-escaped: it holds generated text)."""
    found = results.get("inspection")
    if not found:
        return ""
    if found.get("error"):
        return f"<h2>LLM outputs of sampled users</h2><p>The inspection failed: {html.escape(found['error'])}</p>"
    n = len(found.get("users") or [])
    return (f"<h2>LLM outputs of sampled users</h2><details id='inspection'><summary>Show {n} sampled users side by "
            "side (history, candidates, chosen pair, profile, attributes, failures)</summary>"
            f"<pre>{html.escape(found.get('text', ''))}</pre></details>")


_INTRO = "Metrics are full-ranking over all items with training (and validation) items masked; "
#: How a run's reported epoch was chosen (the run manifest's ``selection.mode``), as the report words it.
_SELECTION = {"val": "best epoch on validation", "test": "best epoch on TEST (paper protocol)",
              "last": "none: last epoch (selection='last')"}


def _intro(results: Mapping[str, Any]) -> str:
    """The sentence on metrics and model selection: validation for every run, or which runs chose otherwise."""
    modes: dict[str, list[str]] = {}
    for run in results.get("runs") or []:
        names = modes.setdefault(run.get("selection") or "val", [])
        if run["name"] not in names:
            names.append(run["name"])
    if set(modes) <= {"val"}:
        return _INTRO + "models were selected on the validation split."
    parts = [f"{_SELECTION.get(mode, mode)} for {', '.join(names)}" for mode, names in modes.items()]
    return _INTRO + "model selection: " + "; ".join(parts) + "."


def render_markdown(results: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown: warning, headline, then every table (charts are in the HTML)."""
    lines = [f"# llmrec_local report: {results.get('recipe', '?')}", ""]
    reasons = synthetic_inputs(results)
    if reasons:
        lines += [f"> **WARNING: {BANNER_TITLE}**", ">"] + [f"> - {r}" for r in reasons]
        lines += [">", f"> {banner_text(reasons)}", ""]
    found = headline(results)
    lines += [f"**Finding:** {found.text if found else 'no evaluated runs yet.'}", ""]
    note = undertrained(results)
    if note:
        lines += [f"> **WARNING: {UNDERTRAINED_TITLE}** {note}", ""]
    lines += [f"Recipe hash `{results.get('config_hash', '?')}`. {_intro(results)}", ""]
    for table in _tables(results):
        lines += [f"## {table.title}", "", "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
        lines.append("")
    lines += _inspection_markdown(results)
    if results.get("resolved_recipe"):
        lines += ["## Resolved recipe", "", "```toml", results["resolved_recipe"].rstrip(), "```", ""]
    return "\n".join(lines)


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,"DejaVu Sans",Verdana,sans-serif;max-width:1150px;margin:0 auto;padding:1.2em 1.5em;
  color:#222;line-height:1.45}
h1{font-size:1.6em;margin:0.3em 0}
h2{font-size:1.2em;margin:1.6em 0 0.4em}
.banner{background:#b00020;color:#fff;padding:0.8em 1.1em;border-radius:6px;margin:0.8em 0}
.banner strong{font-size:1.1em}
.banner ul{margin:0.4em 0;padding-left:1.3em}
.headline{border-left:6px solid #1f77b4;background:#eef5fb;padding:0.8em 1.1em;margin:0.8em 0;font-size:1.1em}
.headline .verdict{display:inline-block;font-size:0.8em;font-weight:bold;text-transform:uppercase;
  letter-spacing:0.03em;color:#1f4e79;margin-bottom:0.2em}
figure{margin:1em 0 1.6em}
figcaption{font-size:0.85em;color:#555}
.table-wrap{max-width:100%;overflow-x:auto;margin:0.4em 0 1.2em}
table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
th{background:#f0f0f0;white-space:nowrap}
details{margin:0.6em 0}
summary{cursor:pointer;font-weight:bold}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    # The scrollable wrapper keeps a wide table from pushing the page past the window.
    return f"<div class='table-wrap'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _html_banner(results: Mapping[str, Any]) -> str:
    reasons = synthetic_inputs(results)
    if not reasons:
        return ""
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    return (f"<div class='banner' role='alert' id='synthetic-inputs'><strong>WARNING: {html.escape(BANNER_TITLE)}"
            f"</strong><ul>{items}</ul>{html.escape(banner_text(reasons))}</div>")


def _html_undertrained(results: Mapping[str, Any]) -> str:
    note = undertrained(results)
    return (f"<div class='banner' role='alert' id='undertrained'><strong>WARNING: {html.escape(UNDERTRAINED_TITLE)}"
            f"</strong><br>{html.escape(note)}</div>" if note else "")


def _html_headline(results: Mapping[str, Any]) -> str:
    found = headline(results)
    if found is None:
        return "<div class='headline' id='headline'>No evaluated runs yet: no finding to report.</div>"
    return (f"<div class='headline' id='headline'><span class='verdict'>{html.escape(found.verdict)}</span><br>"
            f"{html.escape(found.text)}</div>")


def render_html(results: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page: warning, headline, charts (inline SVG), then every table."""
    from .charts import all_charts  # matplotlib loads only when an HTML report is drawn

    title = f"llmrec_local report: {results.get('recipe', '?')}"
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", _html_banner(results), _html_headline(results),
             _html_undertrained(results),
             f"<p>Recipe hash <code>{html.escape(str(results.get('config_hash', '?')))}</code>. "
             f"{html.escape(_intro(results))}</p>"]
    charts = all_charts(results)
    if charts:
        parts.append("<h2>Charts</h2>")
        parts += [f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, svg in charts]
    tables = _tables(results)
    for table in (t for t in tables if not t.collapsed):
        parts.append(f"<h2>{html.escape(table.title)}</h2>{_html_table(table)}")
    collapsed = [t for t in tables if t.collapsed]
    if collapsed:
        parts.append(f"<details><summary>Most frequent generated values ({len(collapsed)} tables)</summary>"
                     + "".join(f"<h3>{html.escape(t.title)}</h3>{_html_table(t)}" for t in collapsed)
                     + "</details>")
    parts.append(_inspection_html(results))
    if results.get("resolved_recipe"):
        parts.append("<h2>Resolved recipe</h2><details><summary>Show the recipe (TOML, every default spelled out)"
                     f"</summary><pre>{html.escape(results['resolved_recipe'])}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(results: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(render_markdown(results), encoding="utf-8")
    page.write_text(render_html(results), encoding="utf-8")
    return md, page
