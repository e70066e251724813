"""What a study's results say, in words: the headline finding and the synthetic-inputs warning.

Both are read from the `StudyResults` mapping (see `llmrec_local.report.stage`) and shared by the Markdown and
HTML renderers, so the two reports can never disagree on the finding.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The metric the headline ranks systems by (the paper's and the recipes' model-selection metric).
PRIMARY_METRIC = "recall@20"
#: Significance level of the headline's paired test.
ALPHA = 0.05
#: Recipe keys that name a component which produces inputs (the LLM, its backend, the embedding encoders).
_COMPONENT_KEYS = ("model", "backend")

BANNER_TITLE = "Synthetic inputs: these numbers are a code-path check, not a quality claim."
UNDERTRAINED_TITLE = "runs cut by their epoch cap while still improving."


@dataclass(frozen=True)
class Headline:
    """The headline finding: `text` is one plain-text sentence (no markup); `verdict` is its short form
    ("significant gain", "baseline best (significant gap)", "no significant difference",
    "single seed: no significance test", "no paired test available", "no baseline"); `best` names the best system
    on the primary metric."""

    text: str
    verdict: str
    best: str


def _recipe(results: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved recipe as a dict; {} when absent or unreadable (a report never fails on its footnotes)."""
    try:
        return tomllib.loads(results.get("resolved_recipe") or "")
    except tomllib.TOMLDecodeError:
        return {}


def _is_synthetic(value: str) -> bool:
    """True for the smoke model's alias and ids ("smoke", "smoke@<hash>") and for fake components ("fake...")."""
    v = value.strip().lower()
    return v in ("smoke", "fake") or v.startswith(("smoke@", "fake@", "fake-", "fake_", "fake:"))


def _leaves(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every string leaf of a parsed TOML table, arrays of tables included."""
    for key, value in table.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from _leaves(item, f"{prefix}{key}[{i}].")
        elif isinstance(value, str):
            yield f"{prefix}{key}", value


def synthetic_llm_jobs(results: Mapping[str, Any]) -> set[str]:
    """Augment jobs whose answers came from the smoke model or a fake backend: from the model each job recorded
    (``augment[job]["model"]``) or, for results written before jobs recorded it, from the recipe's augment.model."""
    recipe_model = str((_recipe(results).get("augment") or {}).get("model", ""))
    jobs = set()
    for job, stats in (results.get("augment") or {}).items():
        model = stats.get("model") or {}
        ids = [str(model.get(k, "")) for k in ("alias", "model_id")] if isinstance(model, Mapping) else [str(model)]
        if any(_is_synthetic(i) for i in ids + [recipe_model] if i):
            jobs.add(job)
    return jobs


def synthetic_inputs(results: Mapping[str, Any]) -> list[str]:
    """Why the banner is shown: one sentence per smoke or fake component that produced the study's inputs;
    [] when every component is real."""
    reasons: list[str] = []
    for key, value in _leaves(_recipe(results)):
        name = key.rsplit(".", 1)[-1]
        if (name in _COMPONENT_KEYS or name.endswith("_model")) and _is_synthetic(value):
            if value.lower().startswith("smoke"):
                reasons.append(f'{key} = "{value}": the LLM is a tiny RANDOM model built locally; its answers '
                               "are noise.")
            else:
                reasons.append(f'{key} = "{value}": a fake component produced these inputs, not a real model.')
    # Jobs answered by a synthetic model the recipe does not name (e.g. a fake backend passed in code).
    if not any(r.startswith("augment.model ") for r in reasons):
        by_model: dict[str, list[str]] = {}
        for job in sorted(synthetic_llm_jobs(results)):
            model = (results.get("augment") or {})[job].get("model") or {}
            by_model.setdefault(str(model.get("model_id") if isinstance(model, Mapping) else model), []).append(job)
        for model_id, jobs in by_model.items():
            kind = "the tiny RANDOM smoke model" if model_id.lower().startswith("smoke") else "a fake backend"
            reasons.append(f"augment jobs {', '.join(jobs)}: answered by {model_id} ({kind}), not a real LLM.")
    return reasons


def banner_text(reasons: Sequence[str]) -> str:
    """The banner's closing sentence (plain text): what the numbers are worth when `reasons` is not empty."""
    return ("The LLM-derived inputs are noise, so the LLMRec numbers (and those of every system that uses the LLM's "
            "outputs) are a code-path check, not a quality claim. Use a real model (e.g. qwen2-7b) for findings."
            if reasons else "")


def _fmt_p(p: float) -> str:
    return "< 1e-300" if p == 0 else f"= {p:.2g}"


def _p_of(test: Mapping[str, Any]) -> tuple[float | None, str]:
    """The p-value a comparison is judged by and its name: the Holm-adjusted one when the comparison has it (the
    family of all runs tested against the baseline on that metric), else the raw one."""
    for key, name in (("p_holm", "p_holm"), ("p_value", "p")):
        value = test.get(key)
        if value is not None and not math.isnan(float(value)):
            return float(value), name
    return None, "p"


def comparison_verdict(test: Mapping[str, Any]) -> str:
    """One comparison in words, e.g. "lightgcn vs mf: +0.0560 recall@20, p_holm = 0.003, significant" or
    "... p_holm = 0.41: no significant difference" (significant: adjusted p < `ALPHA`)."""
    p, name = _p_of(test)
    lead = f"{test['run']} vs {test['baseline']}: {float(test['mean_diff']):+.4f} {test['metric']}"
    if p is None:
        return f"{lead}, no test (fewer than 2 pairs or identical results)"
    if p < ALPHA:
        return f"{lead}, {name} {_fmt_p(p)}, significant"
    return f"{lead}, {name} {_fmt_p(p)}: no significant difference"


def _groups(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The primary metric of every seed, by system name, in first-seen order."""
    out: dict[str, list[float]] = {}
    for run in runs:
        value = (run.get("metrics") or {}).get(PRIMARY_METRIC)
        if value is not None and not math.isnan(float(value)):
            out.setdefault(run["name"], []).append(float(value))
    return out


def _test(comparisons: Sequence[Mapping[str, Any]], run: str, baseline: str) -> Mapping[str, Any] | None:
    """The paired test of `run` against `baseline` on the primary metric, over users when there is one (the
    headline's test: per-user pairs, per-user metrics averaged over seeds), else any test of that pair."""
    found = [c for c in comparisons if c.get("run") == run and c.get("baseline") == baseline
             and c.get("metric") == PRIMARY_METRIC and _p_of(c)[0] is not None]
    over_users = [c for c in found if "users" in str(c.get("test", ""))]
    return (over_users or found or [None])[0]


def headline(results: Mapping[str, Any]) -> Headline | None:
    """The best system on the primary metric and how it compares with the baseline; None without evaluated runs.

    The baseline is the one the comparisons name, else the recipe's ``recipe.baseline``. A difference counts as
    significant at p < `ALPHA` under the paired test over users, Holm-adjusted over all the runs compared with the
    baseline when the comparison carries ``p_holm``. With a single seed the test is not reported:
    one training run's luck would pass for the system's effect, so the headline says so instead of a p-value.
    """
    groups = _groups(results.get("runs") or [])
    if not groups:
        return None
    means = {name: statistics.fmean(v) for name, v in groups.items()}
    best = max(means, key=lambda name: means[name])
    comparisons = results.get("comparisons") or []
    baseline = next((c["baseline"] for c in comparisons if c.get("baseline") in groups), None)
    baseline = baseline or (_recipe(results).get("recipe") or {}).get("baseline")
    n_seeds = len(groups[best])
    spread = f" ± {statistics.stdev(groups[best]):.4f}" if n_seeds > 1 else ""
    score = f"{means[best]:.4f}{spread} over {n_seeds} seed{'s' if n_seeds > 1 else ''}"
    if baseline not in groups or len(groups) < 2:
        return Headline(f"Best on {PRIMARY_METRIC}: {best} ({score}); no baseline to compare against.",
                        "no baseline", best)
    # When the baseline itself wins, the finding is how close the strongest challenger comes.
    other = best if best != baseline else max((n for n in means if n != baseline), key=lambda n: means[n])
    diff = means[other] - means[baseline]
    rel = f" ({diff / means[baseline]:+.1%})" if means[baseline] else ""
    if best == baseline:
        lead = (f"No system beats the baseline {baseline} on {PRIMARY_METRIC} ({score}); the closest, {other}, "
                f"differs by {diff:+.4f}{rel}")
    else:
        lead = f"{best} is best on {PRIMARY_METRIC} ({score}): {diff:+.4f}{rel} over the baseline {baseline}"
    seeds = min(n_seeds, len(groups[baseline]), len(groups[other]))
    test = _test(comparisons, other, baseline)
    if seeds < 2:
        return Headline(f"{lead}; single seed: no significance test.", "single seed: no significance test", best)
    if test is None:
        return Headline(f"{lead}; no paired test available (runs not evaluated for the same seeds under the "
                        "standard protocol).", "no paired test available", best)
    p, name = _p_of(test)
    assert p is not None  # _test keeps only comparisons with a p-value
    how = f"{test.get('test', 'paired test')}, n = {test.get('n', '?')}, {seeds} seeds"
    if p >= ALPHA:
        return Headline(f"{lead}: no significant difference ({name} {_fmt_p(p)}; {how}).",
                        "no significant difference", best)
    gap = "a significant gap" if best == baseline else "a significant gain"
    verdict = "baseline best (significant gap)" if best == baseline else "significant gain"
    return Headline(f"{lead}, {gap} ({name} {_fmt_p(p)}; {how}).", verdict, best)


def undertrained(results: Mapping[str, Any]) -> str | None:
    """One sentence naming the runs that were still improving on validation when they hit their epoch cap (their
    numbers understate the system), or None."""
    cut = sorted({f"{r['name']} (seed {r['seed']})" for r in results.get("runs", [])
                  if (r.get("stopping") or {}).get("still_improving")})
    if not cut:
        return None
    return (f"Still improving at the epoch cap: {', '.join(cut)}. Their validation curve rose within the last "
            "`patience` epochs, so these numbers likely understate them: raise train.epochs and rerun.")
