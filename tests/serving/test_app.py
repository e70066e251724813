"""The recommendation API (`serving.app`) over real HTTP (uvicorn subprocess on 127.0.0.1), checked against a direct
numpy computation from the run's ``embeddings.safetensors`` and the dataset's parquet tables (`testkit.recommend`)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from testkit.recommend import MAX_BATCH, MAX_HISTORY, MAX_K, Reference, TinyRun, check_items, genre_history

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]


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
    assert model["limits"] == {"max_k": MAX_K, "max_batch": MAX_BATCH, "max_history": MAX_HISTORY,
                               "max_body_bytes": 1 << 20}


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
    check_items(ref, body["items"], ref.user_topk(user_id, 10), ref.user[u])


@pytest.mark.slow
def test_exclude_seen_false_ranks_everything(client: httpx.Client, ref: Reference) -> None:
    r = client.get("/users/u0003/recommendations", params={"k": MAX_K, "exclude_seen": "false"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    u = ref.user_index["u0003"]
    check_items(ref, items, ref.user_topk("u0003", MAX_K, exclude_seen=False), ref.user[u])
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
        check_items(ref, x["items"], ref.user_topk(x["user_id"], 5), ref.user[ref.user_index[x["user_id"]]])


@pytest.mark.slow
def test_fold_in_follows_the_documented_rule_and_the_planted_genre(client: httpx.Client, ref: Reference) -> None:
    precision = {}
    for genre in GENRES:
        history = genre_history(ref, genre)
        r = client.post("/recommendations/fold-in", json={"items": history, "k": 10})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["history"] == history
        returned = [a["item_id"] for a in body["items"]]
        assert not set(returned) & set(history)
        expected = ref.fold_in_topk(history, 10)
        vector = ref.item[[ref.item_index[i] for i in history]].astype(np.float64).mean(axis=0)
        check_items(ref, body["items"], expected, vector)
        again = client.post("/recommendations/fold-in", json={"items": history, "k": 10}).json()
        assert again == body  # deterministic
        precision[genre] = np.mean([genre in a["genres"] for a in body["items"]])
    # ~22% of items carry a given genre; a history of one planted genre must pull that genre up clearly
    assert np.mean(list(precision.values())) >= 0.5, precision
    assert min(precision.values()) >= 0.3, precision


@pytest.mark.slow
def test_fold_in_history_is_a_set(client: httpx.Client, ref: Reference) -> None:
    history = genre_history(ref, "Drama", 3)
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


def test_docs_page_is_self_contained_and_lists_every_operation(tiny_run: TinyRun) -> None:
    """/docs must work in an air-gapped lab: no script and no asset from another host (FastAPI's default Swagger UI
    loads from a CDN and stays blank offline)."""
    import re

    from fastapi.testclient import TestClient

    from serving.app import create_app

    with TestClient(create_app(tiny_run.run)) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "<script" not in html and not re.search(r"(src|href)=['\"]https?://", html)
        for op in ("GET /health", "GET /model", "GET /users/{user_id}/recommendations",
                   "POST /recommendations/batch", "POST /recommendations/fold-in"):
            assert op in html
        assert "BatchRequest" in html and "exclude_seen" in html
        assert c.get("/redoc").status_code == 404
