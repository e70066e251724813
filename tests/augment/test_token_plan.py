"""The history budget in tokens and the token plan of a job (`llmrec_local.augment.plan`), on the tiny dataset with
the smoke model's real tokenizer and a scripted backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit.fakes import FakeBackend, job_of, valid_text

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.augment.config import AugmentConfig
from llmrec_local.augment.jobs import PairsJob, ProfilesJob
from llmrec_local.augment.plan import PlanContext, token_plan
from llmrec_local.augment.prompts import ItemText, history_section
from llmrec_local.augment.runner import run_job
from llmrec_local.augment.stage import build_jobs
from llmrec_local.config import hash_dict
from llmrec_local.errors import ConfigError
from llmrec_local.llm.base import GenRequest, Sampling
from llmrec_local.llm.tokens import load_prompt_tokenizer

ITEMS = [ItemText(f"Movie number {i} with a longer title", 1990 + i, ("Comedy", "Drama")) for i in range(30)]


@pytest.fixture(scope="module")
def tokenizer(smoke_models_dir: Path):
    return load_prompt_tokenizer("smoke", smoke_models_dir)


@pytest.fixture(scope="module")
def hf(smoke_models_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smoke_models_dir / "llmrec-smoke-llm")


def _ids(hf, messages) -> list[int]:
    """Independent count: the chat template rendered and encoded by transformers directly."""
    text = hf.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return hf(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("budget", [16, 60, 200, 5000])
def test_history_fits_the_token_budget_and_the_next_line_would_not(tokenizer, hf, budget: int) -> None:
    section = history_section(ITEMS, max_items=25, max_chars=100, max_tokens=budget, count_tokens=tokenizer.count)
    count = lambda lines: len(hf("\n".join(lines), add_special_tokens=False)["input_ids"])  # noqa: E731
    assert section.total == 30 and section.shown >= 1
    assert section.shown == 1 or count(section.lines) <= budget
    if section.shown < 25:
        assert count(section.lines + (f"- {ITEMS[section.shown].line()}",)) > budget
    else:
        assert budget == 5000  # the item cap binds, not the tokens (the char budget of 100 is ignored)


def test_character_budget_is_unchanged_without_a_token_budget() -> None:
    section = history_section(ITEMS, max_items=25, max_chars=130)
    assert section.lines == tuple(f"- {item.line()}" for item in ITEMS[:2])  # 2 x (59 + 1) <= 130 < 3 x 60


def test_token_budget_without_tokenizer_names_the_fix(dataset: Dataset) -> None:
    job = ProfilesJob(dataset, AugmentConfig(model="fake", history_max_tokens=64))
    with pytest.raises(ConfigError, match="history_max_tokens=64.*--models-dir"):
        job.plan()


def test_settings_and_hashes_unchanged_without_a_token_budget(dataset: Dataset) -> None:
    """history_max_tokens is an added setting: at its default no config hash or job identity changes."""
    assert "history_max_tokens" not in hash_dict(AugmentConfig())
    settings = ProfilesJob(dataset, AugmentConfig()).settings()
    assert {k: settings[k] for k in ("history_max_items", "history_max_chars")} == {
        "history_max_items": 50, "history_max_chars": 4000}
    assert "history_max_tokens" not in settings
    with_tokens = ProfilesJob(dataset, AugmentConfig(history_max_tokens=300)).settings()
    assert with_tokens["history_max_tokens"] == 300 and "history_max_chars" not in with_tokens


def _vllm_like_hits(prompts: list[list[int]], block: int) -> int:
    cached: set[tuple[int, ...]] = set()
    total = 0
    for p in prompts:
        n = 0
        while (n + 1) * block <= len(p) - 1 and tuple(p[:(n + 1) * block]) in cached:
            n += 1
        total += n * block
        cached.update(tuple(p[:(j + 1) * block]) for j in range(len(p) // block))
    return total


def test_plan_equals_independent_counts_and_manifest_has_both(dataset: Dataset, candidates_path: Path,
                                                               tokenizer, hf, tmp_path: Path) -> None:
    config = AugmentConfig(model="smoke", jobs=("pairs", "profiles"), batch_size=4, history_max_items=8,
                           history_max_tokens=120)
    log_path = tmp_path / "throughput.jsonl"
    ctx = PlanContext(tokenizer=tokenizer, backend="vllm", block_size=16, log_path=log_path)
    backend = FakeBackend(valid_text, model_id="smoke@test")
    for job, inputs in build_jobs(config, dataset, candidates_path, tokenizer):
        path = run_job(job, backend, config, tmp_path / job.artifact, tmp_path / "cache", inputs=inputs,
                       progress=False, plan=ctx)
        calls = [r for r in backend.calls if job_of(r) == job.name]
        ids = [_ids(hf, r.messages) for r in calls]
        assert ids == sorted(ids)  # sent in prefix order
        token_plan_record = read_manifest(path)["token_plan"]
        planned, got = token_plan_record["planned"], token_plan_record["measured"]
        assert planned["requests"] == len(calls) == dataset.n_users
        assert planned["prompt_tokens"] == sum(map(len, ids)) and planned["prompt_tokens_max"] == max(map(len, ids))
        assert planned["output_tokens_max"] == len(calls) * config.sampling_for(job.name).max_tokens
        hits = _vllm_like_hits(ids, 16)
        assert planned["prefix_cache"]["hit_tokens"] == hits
        assert planned["prefix_cache"]["share"] == round(hits / sum(map(len, ids)), 4)
        per_batch = sum(_vllm_like_hits(ids[s:s + 4], 16) for s in range(0, len(ids), 4))
        assert planned["prefix_cache"]["share_per_batch"] == round(per_batch / sum(map(len, ids)), 4)
        # the scripted backend reports 1 prompt and 1 completion token per request
        assert got["attempt0"] == {"requests": len(calls), "prompt_tokens": len(calls),
                                   "completion_tokens": len(calls), "prefix_cache_share": None}
        assert "Token plan vs measured" in (path / "summary.md").read_text()
        assert json.loads((path / "usage.json").read_text())["token_plan"] == token_plan_record
    logged = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [r["job"] for r in logged] == ["pairs", "profiles"] and all(r["model_id"] == "smoke@test" for r in logged)


def test_history_budget_keeps_every_history_within_its_tokens(dataset: Dataset, candidates_path: Path,
                                                             tokenizer) -> None:
    """Before/after of the budget on the tiny dataset: every history fits, and never more items than before."""
    from llmrec_local.artifacts.candidates import candidates_k, load_candidates

    frame, fingerprint = load_candidates(candidates_path)
    k = candidates_k(candidates_path)
    chars = PairsJob(dataset, frame, AugmentConfig(history_max_items=8), fingerprint, k)
    tokens = PairsJob(dataset, frame, AugmentConfig(history_max_items=8, history_max_tokens=40), fingerprint, k,
                      tokenizer)
    for before, after in zip(chars.plan()[0], tokens.plan()[0], strict=True):
        lines = after.context.history.lines
        assert len(lines) == 1 or tokenizer.count(["\n".join(lines)])[0] <= 40
        assert after.context.history.shown <= before.context.history.shown
    from llmrec_local.augment.jobs import LineCounter

    counter = LineCounter(tokenizer, AugmentConfig(history_max_tokens=40))
    blocks = ["- a\n- b", "- a\n- b\n- c"]
    assert counter(["- a", "\n", *blocks]) == tokenizer.count(["- a", "\n", *blocks])
    assert set(counter._known) == {"- a", "\n"}  # per-user blocks are counted, not kept


def test_estimate_comes_from_the_throughput_log(tmp_path: Path) -> None:
    import socket

    log_path = tmp_path / "throughput.jsonl"
    row = {"host": socket.gethostname(), "model_id": "m", "backend": "vllm", "job": "pairs", "requests": 10,
           "prompt_tokens": 1000, "prefill_tokens": 800, "completion_tokens": 200, "generate_s": 2.0,
           "startup_s": 5.0}
    other = {**row, "host": "elsewhere", "generate_s": 1000.0}
    log_path.write_text(json.dumps(row) + "\n" + json.dumps(other) + "\n")
    reqs = [GenRequest(f"pairs:user:{i}", ({"role": "user", "content": "x"},), None, Sampling(max_tokens=32))
            for i in range(4)]
    ids = [[1, 2, 3, i] for i in range(4)]
    ctx = PlanContext(backend="vllm", block_size=2, log_path=log_path)
    plan = token_plan("pairs", "m", reqs, ids, batch_size=2, tasks=5, cached=1, ctx=ctx, engine_loaded=False)
    assert plan["output_tokens_expected"] == 4 * 20 and plan["output_tokens_max"] == 4 * 32
    hits = 2 * 3  # the 3 later prompts each reuse the first full block [1, 2]
    rate = (800 + 200) / 2.0
    assert plan["prefix_cache"]["hit_tokens"] == hits
    assert plan["wall"]["tokens_per_s"] == rate and plan["wall"]["startup_s"] == 5.0
    assert plan["wall"]["generate_s"] == round((16 - hits + 80) / rate, 1)
    fresh = token_plan("pairs", "other-model", reqs, ids, batch_size=2, tasks=4, cached=0, ctx=ctx,
                       engine_loaded=True)
    assert fresh["output_tokens_expected"] is None and "DEFAULT" in fresh["wall"]["source"]


def test_estimate_fits_prefill_and_output_costs_to_jobs_of_other_kinds(tmp_path: Path) -> None:
    """Two earlier jobs with known per-token costs (1 ms per prefill token, 10 ms per output token): a job of a
    third kind is estimated with exactly those costs."""
    import socket

    log_path = tmp_path / "throughput.jsonl"
    rows = [{"host": socket.gethostname(), "model_id": "m", "backend": "vllm", "job": job, "requests": 10,
             "prompt_tokens": p, "prefill_tokens": p, "completion_tokens": o, "generate_s": 0.001 * p + 0.01 * o}
            for job, p, o in (("pairs", 5000, 100), ("attributes", 1000, 2000))]
    log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reqs = [GenRequest(f"profiles:user:{i}", ({"role": "user", "content": "x"},), None, Sampling(max_tokens=50))
            for i in range(2)]
    plan = token_plan("profiles", "m", reqs, [[1] * 300, [2] * 300], batch_size=2, tasks=2, cached=0,
                      ctx=PlanContext(backend="vllm", block_size=16, log_path=log_path), engine_loaded=True)
    assert plan["output_tokens_expected"] is None  # no earlier profiles job: the bound (100 tokens) is assumed
    assert plan["wall"]["generate_s"] == round(0.001 * 600 + 0.01 * 100, 1)
    assert "fitted" in plan["wall"]["source"]


def test_a_retried_chat_is_tokenized_once(dataset: Dataset, candidates_path: Path, tokenizer, tmp_path: Path) -> None:
    """Retries send the same chats at a higher temperature: the runner tokenizes each chat once, not per attempt."""

    class Counting:
        def __init__(self) -> None:
            self.chats: list[str] = []

        def count(self, texts):  # type: ignore[no-untyped-def]
            return tokenizer.count(texts)

        def chat_ids(self, conversations):  # type: ignore[no-untyped-def]
            self.chats += [json.dumps(c) for c in conversations]
            return tokenizer.chat_ids(conversations)

    counting = Counting()
    config = AugmentConfig(model="smoke", jobs=("profiles",), batch_size=4, max_retries=2)
    first = config.sampling_for("profiles").temperature

    def respond(req: GenRequest) -> str:  # the first answer is invalid for keys ending in an even digit
        return "not json" if req.sampling.temperature == first and req.key.endswith(("0", "2", "4", "6", "8")) \
            else valid_text(req)

    backend = FakeBackend(respond, model_id="smoke@test")
    (job, inputs), = build_jobs(config, dataset, candidates_path, tokenizer)
    run_job(job, backend, config, tmp_path / job.artifact, tmp_path / "cache", inputs=inputs, progress=False,
            plan=PlanContext(tokenizer=counting, backend="vllm", block_size=16))
    retried = [r for r in backend.calls if r.sampling.temperature != first]
    assert retried and len(backend.calls) == dataset.n_users + len(retried)
    assert len(counting.chats) == len(set(counting.chats)) == dataset.n_users
