"""Fixtures and helpers of the recommendation-service tests (tests/serving: test_app, test_recommend,
test_recommend_server; tests/serving/conftest.py registers the fixtures): a tiny trained run on planted-preference
synthetic data, the real recommendation server started on 127.0.0.1 as a subprocess (stopped by PID when the
session ends), and `Reference`, the expected answers computed straight from the artifact files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from safetensors.numpy import load_file

from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare
from llmrec_local.train.config import ModelConfig, TrainConfig
from llmrec_local.train.stage import train
from serving.recommend_server import launch, stop

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Limits the test server runs with: max_k below n_items (80) so that both K bounds can be tested.
MAX_K, MAX_BATCH, MAX_HISTORY = 50, 16, 8


@dataclass(frozen=True)
class TinyRun:
    raw: Path
    dataset: Path
    run: Path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """60 users x 80 items, 6 planted genres; LightGCN (d=32, 2 layers) trained 3 epochs (a few seconds)."""
    root = tmp_path_factory.mktemp("serving")
    raw = generate_synthetic(root / "raw", n_users=60, n_items=80, n_genres=6, interactions_per_user=15, seed=0,
                             posters=False)
    dataset = prepare(PrepareConfig(source=raw), root / "dataset")
    config = TrainConfig(model=ModelConfig(name="lightgcn", dim=32, n_layers=2), epochs=3, batch_size=256, lr=0.05,
                         progress=False)
    run = train(config, dataset, root / "runs" / "lightgcn")
    return TinyRun(raw, dataset, run)


def server_command(run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "serving.recommend_server", "--run", str(run), *extra]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    log: Path


@pytest.fixture(scope="session")
def server(tiny_run: TinyRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server (uvicorn) for `tiny_run`; waits for /health (60 s at most), stops it by PID afterwards."""
    log = tmp_path_factory.mktemp("server-log") / "server.log"
    extra = ["--max-k", str(MAX_K), "--max-batch", str(MAX_BATCH), "--max-history", str(MAX_HISTORY), "--no-access-log"]
    try:
        proc, url = launch(tiny_run.run, log, extra=extra, timeout_s=60)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield Server(url, proc.pid, log)
    finally:
        stop(proc)


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


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


def genre_history(ref: Reference, genre: str, n: int = 4) -> list[str]:
    return [r["item_id"] for r in ref.items.iter_rows(named=True) if list(r["genres"]) == [genre]][:n]


def check_items(ref: Reference, answer: list[dict], expected: list[int], query: np.ndarray) -> None:
    """Same items in the same order as `expected`, metadata from the items table, scores = query . item."""
    assert [a["item_id"] for a in answer] == [ref.meta(i)["item_id"] for i in expected]
    for a, i in zip(answer, expected):
        assert {k: a[k] for k in ("item_id", "title", "year", "genres")} == ref.meta(i)
        assert a["score"] == pytest.approx(float(ref.item[i] @ query), rel=1e-4, abs=1e-6)
    scores = [a["score"] for a in answer]
    assert scores == sorted(scores, reverse=True)
