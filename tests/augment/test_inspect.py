"""The augmentation inspector: seeded sample, agreement statistics against hand-computed values, failures with raw
answers, graceful degradation when jobs are missing, the CLI, and the report's rendering of the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from testkit.fakes import FakeBackend, job_of, valid_text

from llmrec_local.augment import AugmentConfig, augment
from llmrec_local.augment import inspect as inspector
from llmrec_local.augment.__main__ import main
from llmrec_local.augment.inspect import agreement, inspect_augmentations, render_text, to_results
from llmrec_local.errors import ConfigError
from llmrec_local.llm.base import GenRequest
from llmrec_local.report.stage import render_html, render_markdown

PROSE = "I would say they liked the second one <b>really</b>"


def _workdir(root: Path, dataset_path: Path, candidates_path: Path | None) -> Path:
    """A workdir laid out like a recipe's: copies of the shared dataset (and candidates) artifacts."""
    shutil.copytree(dataset_path, root / "dataset")
    if candidates_path is not None:
        shutil.copytree(candidates_path, root / "candidates")
    return root


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path, candidates_path: Path) -> Path:
    """Every job run by FakeBackend: pairs always (liked = rank 0, disliked = rank 1), except users with index
    divisible by 4, who only ever get prose (their pairs fail)."""
    out = _workdir(tmp_path_factory.mktemp("inspect_full"), dataset_path, candidates_path)

    def respond(req: GenRequest) -> str:
        if job_of(req) == "pairs" and int(req.key.rsplit(":", 1)[1]) % 4 == 0:
            return PROSE
        return valid_text(req)

    config = AugmentConfig(model="fake", batch_size=8, history_max_items=5, max_retries=1, max_failure_rate=1.0)
    augment(config, out / "dataset", out, backend=FakeBackend(respond), candidates=out / "candidates",
            progress=False)
    return out


def test_sample_is_seeded_and_stable(full: Path) -> None:
    first = inspect_augmentations(full, users=4, seed=3)
    again = inspect_augmentations(full, users=4, seed=3)
    assert [v.user for v in first.users] == [v.user for v in again.users]
    assert to_results(first) == to_results(again) and render_text(first) == render_text(again)
    expected = sorted(np.random.default_rng(3).choice(first.n_users, size=4, replace=False).tolist())
    assert [v.user for v in first.users] == expected
    others = {tuple(v.user for v in inspect_augmentations(full, users=4, seed=s).users) for s in range(5)}
    assert len(others) > 1, "the seed must change the sample"
    everyone = inspect_augmentations(full, users=10_000)
    assert [v.user for v in everyone.users] == list(range(first.n_users))


def test_agreement_equals_hand_computed_tiny_case() -> None:
    pairs = {0: (10, 11), 1: (20, 21), 2: (30, 31), 3: (40, 41)}  # user 3 has no candidates: left out
    candidates = {0: [10, 11, 12, 13], 1: [20, 21], 2: [30, 31, 32, 33], 4: [50]}  # user 4 has no pair
    heldout = {0: {10, 13}, 1: {20}, 2: {33}, 3: {40}}
    stats = agreement(pairs, candidates, heldout)
    assert stats is not None and stats.users == 3 and stats.users_with_heldout == 3
    # liked: 10 in H_0, 20 in H_1, 30 not in H_2; disliked: none
    assert (stats.liked_hits, stats.disliked_hits) == (2, 0)
    assert stats.liked_rate == pytest.approx(2 / 3) and stats.disliked_rate == 0.0
    # |C ∩ H| / |C| = 2/4, 1/2, 1/4
    assert stats.random_rate == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    # X ~ Bernoulli(.5) + Bernoulli(.5) + Bernoulli(.25): P(X >= 2) = .3125 + .0625, P(X <= 0) = .5 * .5 * .75
    assert stats.liked_p_value == pytest.approx(0.375) and stats.disliked_p_value == pytest.approx(0.1875)
    # h = [2/3, 0, 0, 1] by rank; every liked pick is rank 0, every disliked pick rank 1
    assert stats.liked_position_matched_rate == pytest.approx(2 / 3)
    assert stats.disliked_position_matched_rate == 0.0
    assert agreement({0: (1, 2)}, {}, {0: {1}}) is None


def test_normal_approximation_is_close_to_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    probs = np.random.default_rng(0).uniform(0.0, 0.4, size=400)
    exact = inspector._tail(probs, 95, upper=True), inspector._tail(probs, 60, upper=False)
    monkeypatch.setattr(inspector, "EXACT_P_MAX_USERS", 0)
    approx = inspector._tail(probs, 95, upper=True), inspector._tail(probs, 60, upper=False)
    assert approx == pytest.approx(exact, abs=0.01)


def test_agreement_on_an_augment_output_matches_an_independent_count(full: Path) -> None:
    stats = inspect_augmentations(full, users=0).agreement
    assert stats is not None
    cands = pl.read_parquet(full / "candidates" / "candidates.parquet")
    held = pl.read_parquet(full / "dataset" / "split.parquet").filter(pl.col("split") != "train")
    users = sorted(u for u in cands["user"].unique().to_list() if u % 4)  # users divisible by 4 have no pair
    hits = {u: set(held.filter(pl.col("user") == u)["item"].to_list()) for u in users}
    ranked = {u: cands.filter(pl.col("user") == u).sort("rank")["item"].to_list() for u in users}
    assert stats.users == len(users)
    assert stats.liked_hits == sum(ranked[u][0] in hits[u] for u in users)  # FakeBackend likes rank 0
    assert stats.disliked_hits == sum(ranked[u][1] in hits[u] for u in users)
    assert stats.random_rate == pytest.approx(np.mean([len(set(ranked[u]) & hits[u]) / len(ranked[u])
                                                       for u in users]))
    assert stats.liked_position_matched_rate == pytest.approx(stats.liked_rate)  # a pure position picker


def test_failures_show_raw_answer_and_reason(full: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = inspect_augmentations(full, users=12, failures=True)
    failed = next(v for v in result.users if v.user == 0)
    assert failed.liked is None and {(f.job, f.reason) for f in failed.failures} == {("pairs", "invalid_json")}
    assert {f.attempt for f in failed.failures} == {0, 1} and failed.failures[0].raw == PROSE
    assert result.sampled_failures and all(f.entity % 4 == 0 for f in result.sampled_failures)
    assert main(["inspect", "--out", str(full), "--users", "12", "--failures"]) == 0
    text = capsys.readouterr().out
    assert f"raw: {PROSE}" in text and "invalid_json" in text
    assert "pair: no record" in text and "entities without a record after failing" in text
    assert main(["inspect", "--out", str(full), "--users", "12"]) == 0
    assert PROSE not in capsys.readouterr().out, "raw answers only with --failures"


def test_missing_jobs_degrade_with_a_note(tmp_path: Path, dataset_path: Path) -> None:
    out = _workdir(tmp_path, dataset_path, None)
    augment(AugmentConfig(model="fake", jobs=("attributes",)), out / "dataset", out, backend=FakeBackend(valid_text),
            progress=False)
    result = inspect_augmentations(out, users=3, failures=True)
    joined = "\n".join(result.notes)
    assert "no pairs" in joined and "no user_profiles" in joined and "--jobs profiles" in joined
    assert "no candidates" in joined and result.agreement is None
    assert all(v.profile is None and v.liked is None and v.candidates == [] for v in result.users)
    text = render_text(result)
    assert "profile: no record" in text and "Agreement with later interactions: not available" in text
    assert [j.present for j in result.jobs] == [False, True, False]


def test_cli_prints_and_exits_0(full: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--out", str(full), "--users", "2", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Inspection of {full}: 2 of ") and text.count("== user ") == 2
    assert "LLM-liked item interacted with later" in text and "<- LIKED" in text and "<- DISLIKED" in text
    assert main(["inspect", "--out", str(full), "--users", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["users"]) == 1 and payload["agreement"]["users"] > 0
    with pytest.raises(SystemExit) as exc:
        main(["inspect", "--help"])
    assert exc.value.code == 0 and "inspect" in capsys.readouterr().out.splitlines()[0]
    with pytest.raises(ConfigError, match="holds no complete dataset/"):
        main(["inspect", "--out", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit):
        main(["inspect", "--out", str(full), "--users", "-1"])


def test_report_embeds_the_inspection_escaped(full: Path) -> None:
    found = to_results(inspect_augmentations(full, users=2, failures=True))
    found["text"] += "<script>alert(1)</script>\n"
    results = {"recipe": "t", "inspection": found}
    page = render_html(results)
    assert "<details id='inspection'>" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "LLM pairs against later interactions" in page
    md = render_markdown(results)
    assert "## LLM outputs of sampled users" in md and "| LLM-liked item |" in md
    failed = render_markdown({"recipe": "t", "inspection": {"error": "dataset/ is damaged"}})
    assert "The inspection failed: dataset/ is damaged" in failed
