"""The recommendation service over real HTTP (uvicorn subprocess on 127.0.0.1), checked against a direct numpy
computation from the run's ``embeddings.safetensors`` and the dataset's parquet tables; plus the logic without HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from safetensors.numpy import load_file
from testkit.recommend import (  # noqa: F401  (fixtures used by name)
    MAX_BATCH,
    MAX_HISTORY,
    MAX_K,
    REPO_ROOT,
    TinyRun,
    client,
    server,
    server_command,
    tiny_run,
)

from llmrec_local.errors import ArtifactError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare
from serving.recommend import RunRecommender, ServingInputError, ServingLimits, UnknownIdError, top_k

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]


class Reference:
    """The expected answers, computed straight from the artifact files (independently of serving.recommend)."""

    def __init__(self, run: TinyRun) -> None:
        tensors = load_file(str(run.run / "embeddings.safetensors"))
        self.user, self.item = tensors["user"], tensors["item"]
        self.users = pl.read_parquet(run.dataset / "users.parquet")
        self.items = pl.read_parquet(run.dataset / "items.parquet").sort("item")
        self.user_index = dict(zip(self.users["user_id"].to_list(), self.users["user"].to_list()))
        self.item_index = dict(zip(self.items["item_id"].to_list(), self.items["item"].to_list()))
        split = pl.read_parquet(run.dataset / "split.parquet")
        seen = split.filter(pl.col("split").is_in(["train", "val"]))
        self.seen = {u: set(g["item"].to_list()) for (u,), g in seen.group_by("user")}

    def rank(self, query: np.ndarray, excluded: set[int], k: int) -> list[int]:
        """Top-k item indices of `query` (d,): score desc, ties by index (stable argsort), `excluded` removed."""
        scores = (self.item @ query).astype(np.float64)
        order = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in excluded]
        return order[:k]

    def user_topk(self, user_id: str, k: int, exclude_seen: bool = True) -> list[int]:
        u = self.user_index[user_id]
        return self.rank(self.user[u], self.seen.get(u, set()) if exclude_seen else set(), k)

    def fold_in_topk(self, item_ids: list[str], k: int) -> list[int]:
        """The documented rule: mean of the history items' final vectors, history excluded."""
        history = sorted({self.item_index[i] for i in item_ids})
        vector = self.item[history].astype(np.float64).mean(axis=0)
        return self.rank(vector, set(history), k)

    def meta(self, item: int) -> dict:
        row = self.items.row(item, named=True)
        return {"item_id": row["item_id"], "title": row["title"], "year": row["year"], "genres": list(row["genres"])}


@pytest.fixture(scope="module")
def ref(tiny_run: TinyRun) -> Reference:
    return Reference(tiny_run)


def _genre_history(ref: Reference, genre: str, n: int = 4) -> list[str]:
    return [r["item_id"] for r in ref.items.iter_rows(named=True) if list(r["genres"]) == [genre]][:n]


def _check_items(ref: Reference, answer: list[dict], expected: list[int], query: np.ndarray) -> None:
    """Same items in the same order as `expected`, metadata from the items table, scores = query . item."""
    assert [a["item_id"] for a in answer] == [ref.meta(i)["item_id"] for i in expected]
    for a, i in zip(answer, expected):
        assert {k: a[k] for k in ("item_id", "title", "year", "genres")} == ref.meta(i)
        assert a["score"] == pytest.approx(float(ref.item[i] @ query), rel=1e-4, abs=1e-6)
    scores = [a["score"] for a in answer]
    assert scores == sorted(scores, reverse=True)


# ------------------------------------------------------------------------------------------- over real HTTP
@pytest.mark.slow
def test_health_and_model(client: httpx.Client, tiny_run: TinyRun, ref: Reference) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "run_id": tiny_run.run.name, "n_users": 60, "n_items": 80}
    model = client.get("/model").json()
    manifest = json.loads((tiny_run.run / "manifest.json").read_text())
    assert model["model"] == "lightgcn" and model["dim"] == 32
    assert (model["n_users"], model["n_items"]) == (60, 80)
    assert model["dataset"]["path"] == str(tiny_run.dataset.resolve())
    assert model["dataset"]["config_hash"] == manifest["dataset"]["config_hash"]
    assert model["val_metrics"]["recall@20"] == pytest.approx(manifest["val_metrics"]["recall@20"])
    assert model["eval_metrics"] is None  # no evaluate stage was run on this tiny run
    assert model["limits"] == {"max_k": MAX_K, "max_batch": MAX_BATCH, "max_history": MAX_HISTORY}


@pytest.mark.slow
@pytest.mark.parametrize("user_id", ["u0000", "u0007", "u0059"])
def test_known_user_top_k_matches_numpy(client: httpx.Client, ref: Reference, user_id: str) -> None:
    r = client.get(f"/users/{user_id}/recommendations", params={"k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == user_id and body["k"] == 10 and len(body["items"]) == 10
    u = ref.user_index[user_id]
    seen_ids = {ref.meta(i)["item_id"] for i in ref.seen[u]}
    assert not seen_ids & {a["item_id"] for a in body["items"]}
    _check_items(ref, body["items"], ref.user_topk(user_id, 10), ref.user[u])


@pytest.mark.slow
def test_exclude_seen_false_ranks_everything(client: httpx.Client, ref: Reference) -> None:
    r = client.get("/users/u0003/recommendations", params={"k": MAX_K, "exclude_seen": "false"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    u = ref.user_index["u0003"]
    _check_items(ref, items, ref.user_topk("u0003", MAX_K, exclude_seen=False), ref.user[u])
    # a trained model ranks the user's own training items high: some must appear once they are not excluded
    assert {ref.item_index[a["item_id"]] for a in items} & ref.seen[u]


@pytest.mark.slow
def test_batch_equals_single_requests(client: httpx.Client, ref: Reference) -> None:
    users = ["u0001", "u0010", "u0001", "u0042"]
    r = client.post("/recommendations/batch", json={"users": users, "k": 5})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["user_id"] for x in results] == users
    for x in results:
        single = client.get(f"/users/{x['user_id']}/recommendations", params={"k": 5}).json()["items"]
        assert [a["item_id"] for a in x["items"]] == [a["item_id"] for a in single]
        _check_items(ref, x["items"], ref.user_topk(x["user_id"], 5), ref.user[ref.user_index[x["user_id"]]])


@pytest.mark.slow
def test_fold_in_follows_the_documented_rule_and_the_planted_genre(client: httpx.Client, ref: Reference) -> None:
    precision = {}
    for genre in GENRES:
        history = _genre_history(ref, genre)
        r = client.post("/recommendations/fold-in", json={"items": history, "k": 10})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["history"] == history
        returned = [a["item_id"] for a in body["items"]]
        assert not set(returned) & set(history)
        expected = ref.fold_in_topk(history, 10)
        vector = ref.item[[ref.item_index[i] for i in history]].astype(np.float64).mean(axis=0)
        _check_items(ref, body["items"], expected, vector)
        again = client.post("/recommendations/fold-in", json={"items": history, "k": 10}).json()
        assert again == body  # deterministic
        precision[genre] = np.mean([genre in a["genres"] for a in body["items"]])
    # ~22% of items carry a given genre; a history of one planted genre must pull that genre up clearly
    assert np.mean(list(precision.values())) >= 0.5, precision
    assert min(precision.values()) >= 0.3, precision


@pytest.mark.slow
def test_fold_in_history_is_a_set(client: httpx.Client, ref: Reference) -> None:
    history = _genre_history(ref, "Drama", 3)
    a = client.post("/recommendations/fold-in", json={"items": history, "k": 8}).json()
    b = client.post("/recommendations/fold-in", json={"items": history[::-1] + history[:1], "k": 8}).json()
    assert [x["item_id"] for x in a["items"]] == [x["item_id"] for x in b["items"]]
    assert b["history"] == list(dict.fromkeys(history[::-1]))


_BAD_REQUESTS = [
    # (method, path, kwargs for httpx, status, text the message must contain)
    ("GET", "/users/nobody/recommendations", {}, 404, "'nobody'"),
    ("GET", "/users/u0000/recommendations", {"params": {"k": 0}}, 422, "k=0"),
    ("GET", "/users/u0000/recommendations", {"params": {"k": -3}}, 422, "k=-3"),
    ("GET", "/users/u0000/recommendations", {"params": {"k": MAX_K + 1}}, 422, "max_k"),
    ("GET", "/users/u0000/recommendations", {"params": {"k": 81}}, 422, "k=81"),
    ("GET", "/users/u0000/recommendations", {"params": {"k": "abc"}}, 422, "'abc'"),
    ("GET", "/users/u0000/recommendations", {"params": {"exclude_seen": "maybe"}}, 422, "'maybe'"),
    ("POST", "/recommendations/batch", {"json": {"users": ["u0000", "ghost"], "k": 5}}, 422, "'ghost'"),
    ("POST", "/recommendations/batch", {"json": {"users": [], "k": 5}}, 422, "body.users"),
    ("POST", "/recommendations/batch", {"json": {"users": "u0000"}}, 422, "body.users"),
    ("POST", "/recommendations/batch", {"json": {"users": [None]}}, 422, "None"),
    ("POST", "/recommendations/batch", {"json": {"users": ["u0000"], "k": "10"}}, 422, "body.k"),
    ("POST", "/recommendations/batch", {"json": {"users": ["u0000"], "k": 2.5}}, 422, "2.5"),
    ("POST", "/recommendations/batch", {"json": {"users": ["u0000"], "k": 0}}, 422, "k=0"),
    ("POST", "/recommendations/batch", {"json": {"users": ["u0000"], "kk": 3}}, 422, "kk"),
    ("POST", "/recommendations/batch", {"json": {"users": ["u0000"] * (MAX_BATCH + 1)}}, 422,
     f"{MAX_BATCH + 1} users"),
    ("POST", "/recommendations/batch", {"json": [1, 2]}, 422, "body"),
    ("POST", "/recommendations/fold-in", {"json": {"items": ["i0000", "nosuch"]}}, 422, "'nosuch'"),
    ("POST", "/recommendations/fold-in", {"json": {"items": []}}, 422, "body.items"),
    ("POST", "/recommendations/fold-in", {"json": {"items": ["i0000"], "k": 99}}, 422, "k=99"),
    ("POST", "/recommendations/fold-in", {"json": {"items": [f"i{i:04d}" for i in range(MAX_HISTORY + 1)]}}, 422,
     f"{MAX_HISTORY + 1} history items"),
    ("POST", "/recommendations/fold-in", {"content": b'{"items": ["i0000",',
                                          "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ("POST", "/recommendations/fold-in", {"content": b'{"items": ["i0000"]}'}, 422, "Content-Type"),
    ("GET", "/no/such/route", {}, 404, "Not Found"),
    ("POST", "/users/u0000/recommendations", {}, 405, "Method Not Allowed"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "kwargs", "status", "needle"), _BAD_REQUESTS,
                         ids=[f"{m} {p} {s} {n}" for m, p, _, s, n in _BAD_REQUESTS])
def test_bad_input_gives_4xx_naming_the_value(client: httpx.Client, method: str, path: str, kwargs: dict,
                                              status: int, needle: str) -> None:
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"], r.json()
    assert client.get("/health").status_code == 200  # the service is still up


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["incomplete", "schema_version", "not_a_run"])
def test_startup_refuses_a_bad_run(tiny_run: TinyRun, tmp_path: Path, damage: str) -> None:
    if damage == "not_a_run":
        run, needle = tiny_run.dataset, "expected a 'train' artifact"
    else:
        run = tmp_path / "run"
        shutil.copytree(tiny_run.run, run)
        if damage == "incomplete":
            (run / "_COMPLETE").unlink()
            needle = "incomplete"
        else:
            manifest = json.loads((run / "manifest.json").read_text())
            manifest["schema_version"] = 99
            (run / "manifest.json").write_text(json.dumps(manifest))
            needle = "schema version 99"
    proc = subprocess.run(server_command(run, "--port", "1"), cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert needle in proc.stderr and str(run) in proc.stderr


# ------------------------------------------------------------------------------------------------ logic only
def test_top_k_orders_by_score_then_index_and_drops_excluded() -> None:
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    rows = top_k(scores, 3)
    assert rows[0][0].tolist() == [1, 2, 4] and rows[0][1].tolist() == [3.0, 3.0, 2.0]
    assert rows[1][0].tolist() == [0, 1, 2]
    everything = top_k(scores, 5)
    assert everything[0][0].tolist() == [1, 2, 4, 0]  # the excluded item is not returned
    assert everything[1][0].tolist() == [0, 1, 2, 3, 4]


def test_recommender_logic_without_http(tiny_run: TinyRun, ref: Reference) -> None:
    rec = RunRecommender(tiny_run.run, tiny_run.dataset, ServingLimits(max_k=20))
    got = [r.item for r in rec.recommend(["u0005"], 7)[0]]
    assert got == ref.user_topk("u0005", 7)
    history = _genre_history(ref, "Horror")
    assert [r.item for r in rec.recommend_fold_in(history, 9)] == ref.fold_in_topk(history, 9)
    np.testing.assert_allclose(rec.fold_in_vector(np.array([ref.item_index[i] for i in history])),
                               ref.item[[ref.item_index[i] for i in history]].mean(axis=0), rtol=1e-5)
    with pytest.raises(ServingInputError, match=r"k=21 .*max_k"):
        rec.recommend(["u0005"], 21)
    with pytest.raises(UnknownIdError, match="'zzz'") as info:
        rec.user_index("zzz")
    assert info.value.status == 404
    with pytest.raises(UnknownIdError, match="'i9999'") as info:
        rec.recommend_fold_in(["i0001", "i9999"])
    assert info.value.status == 422
    with pytest.raises(ValueError, match="max_k"):
        ServingLimits(max_k=0)


def test_refuses_a_dataset_the_run_was_not_trained_on(tiny_run: TinyRun, tmp_path: Path) -> None:
    other = prepare(PrepareConfig(source=tiny_run.raw, seed=1), tmp_path / "other")
    with pytest.raises(ArtifactError, match="trained on dataset config"):
        RunRecommender(tiny_run.run, other)


def test_refuses_embeddings_of_the_wrong_shape(tiny_run: TinyRun, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    run = tmp_path / "run"
    shutil.copytree(tiny_run.run, run)
    save_file({"user": np.zeros((60, 4), np.float32), "item": np.zeros((79, 4), np.float32)},
              str(run / "embeddings.safetensors"))
    with pytest.raises(ArtifactError, match="79 items"):
        RunRecommender(run)


def test_an_internal_error_costs_one_request_not_the_service(tiny_run: TinyRun,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from serving.app import create_app

    app = create_app(tiny_run.run)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(app.state.recommender, "recommend", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/users/u0000/recommendations")
        assert r.status_code == 500 and "RuntimeError" in r.json()["detail"]
        assert c.get("/health").status_code == 200
        assert c.post("/recommendations/fold-in", json={"items": ["i0000"], "k": 3}).status_code == 200


def test_model_metadata_reports_evaluation_metrics_when_present(tiny_run: TinyRun, tmp_path: Path) -> None:
    from llmrec_local.evaluate.stage import evaluate

    run = tmp_path / "run"
    shutil.copytree(tiny_run.run, run)
    result = evaluate(run, tiny_run.dataset)
    described = RunRecommender(run).describe()
    assert described["eval_metrics"]["split"] == "test"
    assert described["eval_metrics"]["recall@20"] == pytest.approx(result["metrics"]["recall@20"])
