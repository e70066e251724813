"""The job runner with FakeBackend: all jobs end to end, cache/resume, retries, failure threshold, shards, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from testkit.fakes import (
    FakeBackend,
    job_of,
    rewrite_artifact_file,
    valid_answer,
    valid_text,
)

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.augment import AugmentConfig, augment, merge
from llmrec_local.augment.stage import make_backend
from llmrec_local.errors import AugmentError, ConfigError, DataError, ModelNotFoundError
from llmrec_local.llm.base import GenRequest

CONFIG = AugmentConfig(model="fake", batch_size=8, history_max_items=5)


def records(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path / "records.parquet")


def test_all_jobs_valid_records_and_manifest(dataset: Dataset, candidates_path: Path, tmp_path: Path) -> None:
    backend = FakeBackend(valid_text)
    paths = augment(CONFIG, dataset, tmp_path, backend=backend, candidates=candidates_path, progress=False)
    assert set(paths) == {"candidates", "pairs", "attributes", "profiles"}
    pairs = records(paths["pairs"])
    assert pairs.height == dataset.n_users
    cands = pl.read_parquet(paths["candidates"] / "candidates.parquet")
    first = cands.filter(pl.col("rank") == 0).select("user", pl.col("item").alias("c0"))
    second = cands.filter(pl.col("rank") == 1).select("user", pl.col("item").alias("c1"))
    joined = pairs.join(first, on="user").join(second, on="user")
    assert (joined["pos_item"] == joined["c0"]).all() and (joined["neg_item"] == joined["c1"]).all()
    train = {tuple(r) for r in dataset.arrays().train.tolist()}
    assert not any((u, i) in train for u, i in zip(pairs["user"], pairs["pos_item"]))

    attrs = records(paths["attributes"])
    assert attrs.height == dataset.n_items and set(attrs["country"]) == {"United States"}
    assert set(attrs["language"]) == {"English"}
    profiles = records(paths["profiles"])
    assert profiles.height == dataset.n_users
    assert profiles["profile_text"][0].startswith("Age: 25-34. Gender: female.")
    assert profiles.schema["liked_genres"] == pl.List(pl.String)

    manifest = read_manifest(paths["profiles"])
    assert manifest["stage"] == "augment" and manifest["model"]["model_id"] == "fake"
    assert manifest["template_versions"] == {"profiles": "profiles-v1"}
    assert manifest["counts"]["valid_rate"] == 1.0 and manifest["tokens"]["prompt"] == dataset.n_users
    summary = (paths["attributes"] / "summary.md").read_text()
    assert "valid rate 100.00%" in summary and "API cost avoided" in summary and "United States" in summary
    usage = json.loads((paths["pairs"] / "usage.json").read_text())
    assert usage["requests_sent"] == dataset.n_users and usage["requests_cached"] == 0
    # one request per entity and no more
    assert len(backend.calls) == 2 * dataset.n_users + dataset.n_items


def test_rerun_makes_no_calls_and_force_rebuilds_from_cache(dataset: Dataset, candidates_path: Path,
                                                            tmp_path: Path) -> None:
    first = augment(CONFIG, dataset, tmp_path, backend=FakeBackend(valid_text), candidates=candidates_path,
                    progress=False)
    before = {j: records(p) for j, p in first.items() if j != "candidates"}
    again = FakeBackend(valid_text)
    augment(CONFIG, dataset, tmp_path, backend=again, candidates=candidates_path, progress=False)
    assert again.calls == []  # complete artifacts are skipped
    forced = FakeBackend(valid_text)
    paths = augment(CONFIG, dataset, tmp_path, backend=forced, candidates=candidates_path, force=True,
                    progress=False)
    assert forced.calls == []  # rebuilt entirely from the request cache
    for job, frame in before.items():
        assert records(paths[job]).equals(frame)
    assert json.loads((paths["attributes"] / "usage.json").read_text())["requests_cached"] == dataset.n_items


def test_retry_with_new_seed_and_temperature(dataset: Dataset, tmp_path: Path) -> None:
    def respond(req: GenRequest) -> str:
        # the first attempt (base temperature) answers with prose, a retry with valid JSON
        return "I think the director is..." if req.sampling.temperature == 0.6 else valid_text(req)

    backend = FakeBackend(respond)
    config = AugmentConfig(model="fake", jobs=("attributes",), max_retries=1)
    path = augment(config, dataset, tmp_path, backend=backend, progress=False)["attributes"]
    recs, fails = records(path), pl.read_parquet(path / "failures.parquet")
    assert recs.height == dataset.n_items and (recs["attempt"] == 1).all()
    assert fails.height == dataset.n_items and set(fails["reason"]) == {"invalid_json"}
    assert fails["raw"][0] == "I think the director is..."
    retries = [c for c in backend.calls if c.sampling.temperature > 0.6]
    assert len(retries) == dataset.n_items and retries[0].sampling.temperature == pytest.approx(0.8)
    firsts = {c.key: c.sampling.seed for c in backend.calls if c.sampling.temperature == 0.6}
    assert all(firsts[c.key] != c.sampling.seed for c in retries)
    # each retry is its own cache entry: the failed first answers stay cached next to the valid retries
    assert set(recs["cache_key"]).isdisjoint(set(fails["cache_key"]))
    assert f"valid on a retry: {dataset.n_items}" in (path / "summary.md").read_text()


def test_failure_rate_above_threshold_fails_loudly(dataset: Dataset, tmp_path: Path) -> None:
    def respond(req: GenRequest) -> dict:
        answer = valid_answer(req)
        if int(req.key.rsplit(":", 1)[1]) % 3 == 0:  # a third of the items always get a too-long value
            answer["director"] = "x" * 200
        return answer

    bad = len(range(0, dataset.n_items, 3))
    config = AugmentConfig(model="fake", jobs=("attributes",), max_retries=1, max_failure_rate=0.2)
    with pytest.raises(AugmentError, match=rf"{bad} of {dataset.n_items} entities .*value_too_long"):
        augment(config, dataset, tmp_path, backend=FakeBackend(respond), progress=False)
    assert not (tmp_path / "augment" / "item_attributes").exists()
    staged = pl.read_parquet(tmp_path / "augment" / ".item_attributes.partial" / "failures.parquet")
    assert staged.height == 2 * bad and set(staged["attempt"]) == {0, 1}
    # a higher threshold accepts the same answers from the cache, without a single new request
    again = FakeBackend(respond)
    ok = AugmentConfig(model="fake", jobs=("attributes",), max_retries=1, max_failure_rate=0.5)
    path = augment(ok, dataset, tmp_path, backend=again, progress=False)["attributes"]
    assert again.calls == [] and records(path).height == dataset.n_items - bad


def test_backend_errors_are_recorded_and_retried(dataset: Dataset, tmp_path: Path) -> None:
    seen: set[str] = set()

    def respond(req: GenRequest) -> str:
        if req.key not in seen:
            seen.add(req.key)
            raise RuntimeError("CUDA out of memory")
        return valid_text(req)

    config = AugmentConfig(model="fake", jobs=("profiles",), max_retries=1)
    path = augment(config, dataset, tmp_path, backend=FakeBackend(respond), progress=False)["profiles"]
    fails = pl.read_parquet(path / "failures.parquet")
    assert set(fails["reason"]) == {"backend_error"} and "out of memory" in fails["detail"][0]
    assert records(path).height == dataset.n_users


def test_max_requests_limits_entities(dataset: Dataset, tmp_path: Path) -> None:
    config = AugmentConfig(model="fake", jobs=("attributes", "profiles"), max_requests=4)
    backend = FakeBackend(valid_text)
    paths = augment(config, dataset, tmp_path, backend=backend, progress=False)
    assert records(paths["attributes"])["item"].to_list() == [0, 1, 2, 3]
    assert records(paths["profiles"]).height == 4 and len(backend.calls) == 8


def test_shards_are_disjoint_and_merge_to_the_unsharded_result(dataset: Dataset, candidates_path: Path,
                                                               tmp_path: Path) -> None:
    full = augment(CONFIG, dataset, tmp_path / "full", backend=FakeBackend(valid_text), candidates=candidates_path,
                   progress=False)
    out = tmp_path / "sharded"
    calls = []
    for i in range(3):
        backend = FakeBackend(valid_text)
        cfg = AugmentConfig(**{**CONFIG.__dict__, "shard_index": i, "shard_count": 3})
        paths = augment(cfg, dataset, out, backend=backend, candidates=candidates_path, progress=False)
        assert paths["attributes"].name == f"item_attributes.shard-{i}-of-3"
        calls += [c.key for c in backend.calls]
    assert len(calls) == len(set(calls)) == 2 * dataset.n_users + dataset.n_items
    merged = merge(out, ("pairs", "attributes", "profiles"))
    for job in ("pairs", "attributes", "profiles"):
        assert records(merged[job]).equals(records(full[job]))
        assert read_manifest(merged[job])["counts"]["valid"] == records(full[job]).height


def test_merge_refuses_missing_shards(dataset: Dataset, tmp_path: Path) -> None:
    cfg = AugmentConfig(model="fake", jobs=("attributes",), shard_index=0, shard_count=2)
    augment(cfg, dataset, tmp_path, backend=FakeBackend(valid_text), progress=False)
    from llmrec_local.errors import ArtifactError

    with pytest.raises(ArtifactError, match=r"shards \[1\] of 2 are missing"):
        merge(tmp_path, ("attributes",))


def _copy_dataset(dataset: Dataset, tmp_path: Path) -> Path:
    target = tmp_path / "ds"
    shutil.copytree(dataset.path, target)
    return target


def test_dataset_without_titles_is_a_clear_error(dataset: Dataset, tmp_path: Path) -> None:
    path = _copy_dataset(dataset, tmp_path)
    items = pl.read_parquet(path / "items.parquet")
    rewrite_artifact_file(path, "items.parquet",
                          items.with_columns(pl.lit(None, dtype=pl.String).alias("title")).write_parquet)
    with pytest.raises(DataError, match="no item titles"):
        augment(AugmentConfig(model="fake", jobs=("attributes",)), path, tmp_path / "out",
                backend=FakeBackend(valid_text), progress=False)


def test_users_with_empty_history_are_skipped_with_a_reason(dataset: Dataset, tmp_path: Path) -> None:
    path = _copy_dataset(dataset, tmp_path)
    split = pl.read_parquet(path / "split.parquet")
    rewrite_artifact_file(path, "split.parquet", split.with_columns(
        pl.when(pl.col("user") == 0).then(pl.lit("test")).otherwise(pl.col("split")).alias("split")).write_parquet)
    backend = FakeBackend(valid_text)
    out = augment(AugmentConfig(model="fake", jobs=("profiles",)), path, tmp_path / "out", backend=backend,
                  progress=False)["profiles"]
    assert 0 not in records(out)["user"].to_list() and records(out).height == dataset.n_users - 1
    fails = pl.read_parquet(out / "failures.parquet")
    assert fails.row(0, named=True) | {"detail": None} == {
        "key": "profiles:user:0", "entity": 0, "attempt": -1, "reason": "empty_history", "detail": None, "raw": "",
        "cache_key": None}
    assert all(job_of(c) == "profiles" and c.key != "profiles:user:0" for c in backend.calls)
    assert read_manifest(out)["counts"]["skipped"] == 1


def test_pairs_without_candidates_trains_a_quick_base_model(dataset: Dataset, tmp_path: Path) -> None:
    """What the augment command does without candidates: the runner trains the base model and ranks it."""
    from llmrec_local.run.config import candidates_config
    from llmrec_local.run.stage import ensure_candidates

    cands = ensure_candidates(candidates_config({"k": 4, "epochs": 1}), dataset.path, tmp_path)
    config = AugmentConfig(model="fake", jobs=("pairs",))
    paths = augment(config, dataset, tmp_path, backend=FakeBackend(valid_text), candidates=cands, progress=False)
    assert (tmp_path / "runs" / "_candidates_base" / "embeddings.safetensors").is_file()
    assert read_manifest(paths["candidates"])["masked_train"] is True
    assert records(paths["pairs"]).height == dataset.n_users


def test_unknown_model_alias_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        make_backend(AugmentConfig(model="no-such-model"), models_dir=tmp_path)


def test_config_rejects_bad_values() -> None:
    from llmrec_local.config import from_mapping

    with pytest.raises(ConfigError, match="unknown key"):
        from_mapping(AugmentConfig, {"temprature": 1.0})
    with pytest.raises(ConfigError, match="jobs must be"):
        from_mapping(AugmentConfig, {"jobs": ["pairs", "embeddings"]})
    with pytest.raises(ConfigError, match="top_p"):
        from_mapping(AugmentConfig, {"pairs": {"top_p": 0.0}})
