"""The report's words: the headline finding in each case and the warning about smoke or fake inputs."""

from __future__ import annotations

from report_study import REAL, SMOKE, make_study

from llmrec_local.report.findings import headline, synthetic_inputs
from llmrec_local.report.stage import render_html, render_markdown


def test_headline_significant_gain() -> None:
    found = headline(make_study(gain=0.03, p_value=0.004))
    assert found is not None and found.best == "llmrec" and found.verdict == "significant gain"
    assert found.text == ("llmrec is best on recall@20 (0.3400 ± 0.0100 over 3 seeds): +0.0300 (+9.7%) over the "
                          "baseline lightgcn, a significant gain (p = 0.004; paired t over users, n = 608, 3 seeds).")


def test_headline_no_significant_difference() -> None:
    found = headline(make_study(gain=0.002, p_value=0.31))
    assert found is not None and found.verdict == "no significant difference"
    assert "+0.0020" in found.text and "no significant difference (p = 0.31;" in found.text


def test_headline_single_seed_is_not_tested() -> None:
    found = headline(make_study(seeds=(0,), p_value=1e-9))
    assert found is not None and found.verdict == "single seed: no significance test"
    assert found.text.endswith("over the baseline lightgcn; single seed: no significance test.")
    assert "p =" not in found.text


def test_headline_when_the_baseline_wins() -> None:
    found = headline(make_study(gain=-0.05, p_value=1e-6))
    assert found is not None and found.best == "lightgcn" and found.verdict == "baseline best (significant gap)"
    assert found.text.startswith("No system beats the baseline lightgcn on recall@20")
    assert "the closest, llmrec, differs by -0.0500" in found.text


def test_headline_without_comparisons_or_runs() -> None:
    found = headline(make_study(p_value=None))
    assert found is not None and found.verdict == "no paired test available"
    assert headline({"runs": []}) is None


def test_banner_for_the_smoke_model() -> None:
    for results in (make_study(model=SMOKE, recipe_model="smoke"), make_study(recipe_model="smoke@844e81c822a6")):
        reasons = synthetic_inputs(results)
        assert len(reasons) == 1 and "tiny RANDOM model" in reasons[0]
        for page in (render_markdown(results), render_html(results)):
            assert "tiny RANDOM model" in page and "code-path check, not a quality claim" in page
            assert "LLMRec numbers" in page


def test_banner_for_a_fake_backend_the_recipe_does_not_name() -> None:
    results = make_study(model={"alias": "qwen2-7b", "backend": "vllm", "model_id": "fake"}, recipe_model="qwen2-7b")
    assert synthetic_inputs(results) == ["augment jobs item_attributes, pairs: answered by fake (a fake backend), "
                                         "not a real LLM."]
    assert "id='synthetic-inputs'" in render_html(results)


def test_no_banner_for_a_real_model() -> None:
    results = make_study(model=REAL, recipe_model="qwen2-7b")
    assert synthetic_inputs(results) == []
    assert "synthetic-inputs" not in render_html(results) and "WARNING" not in render_markdown(results)


def test_markdown_opens_with_banner_then_headline() -> None:
    md = render_markdown(make_study(model=SMOKE, recipe_model="smoke"))
    assert md.index("WARNING") < md.index("**Finding:** llmrec is best") < md.index("## Dataset")


def test_runs_still_improving_at_the_cap_are_named_in_both_reports(tmp_path) -> None:
    from llmrec_local.report.findings import undertrained
    from llmrec_local.report.stage import write_report

    runs = [{"name": "lightgcn", "seed": s, "protocol": "standard", "metrics": {"recall@20": 0.2, "ndcg@20": 0.1},
             "curve": [], "stopping": {"reason": "epoch_cap", "still_improving": s == 1}} for s in (0, 1)]
    results = {"recipe": "t", "runs": runs, "comparisons": [], "stages": []}
    assert undertrained(results).startswith("Still improving at the epoch cap: lightgcn (seed 1).")
    md, page = write_report(results, tmp_path)
    assert "> **WARNING: runs cut by their epoch cap while still improving.** Still improving" in md.read_text()
    assert "lightgcn (seed 1)" in md.read_text()
    assert "role='alert' id='undertrained'><strong>WARNING" in page.read_text()
    assert undertrained({"runs": [{**runs[0]}]}) is None


def test_comparisons_in_words_after_the_holm_correction() -> None:
    from llmrec_local.report.findings import comparison_verdict

    test = {"run": "lightgcn", "baseline": "mf", "metric": "recall@20", "mean_diff": 0.056, "p_value": 0.001,
            "p_holm": 0.003}
    assert comparison_verdict(test) == "lightgcn vs mf: +0.0560 recall@20, p_holm = 0.003, significant"
    # significant before the correction, not after it
    assert comparison_verdict({**test, "mean_diff": -0.01, "p_value": 0.03, "p_holm": 0.09}) == (
        "lightgcn vs mf: -0.0100 recall@20, p_holm = 0.09: no significant difference")
    assert comparison_verdict({**test, "p_holm": None}) == "lightgcn vs mf: +0.0560 recall@20, p = 0.001, significant"
    assert comparison_verdict({**test, "p_value": None, "p_holm": None}).endswith("no test (fewer than 2 pairs or "
                                                                                  "identical results)")


def test_report_table_and_headline_use_the_adjusted_p_value() -> None:
    results = make_study(gain=0.03, p_value=0.02)
    for c in results["comparisons"]:
        c["p_holm"] = min(1.0, 3 * c["p_value"])  # as if three runs had been compared with the baseline
    md = render_markdown(results)
    assert "| 0.02 | 0.06 | paired t over users | 608 | llmrec vs lightgcn: +0.0300 recall@20, p_holm = 0.06: no " \
           "significant difference |" in md
    found = headline(results)
    assert found is not None and found.verdict == "no significant difference" and "(p_holm = 0.06;" in found.text
