"""Fixtures for the recommendation-service tests (imported by test_recommend_api.py; kept out of conftest.py, which
the lab-LLM-server tests share): a tiny trained run on planted-preference synthetic data, and the real
recommendation server started on 127.0.0.1 as a subprocess (stopped by PID when the session ends)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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
