"""A job killed with SIGKILL mid-run resumes from its cache: no repeated request, identical artifact."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
from augment_kill_worker import CONFIG
from testkit.fakes import FakeBackend, valid_text

from llmrec_local.augment import augment
from llmrec_local.augment.prompts import TEMPLATE_VERSIONS

WORKER = Path(__file__).with_name("augment_kill_worker.py")


def _cached_keys(cache_dir: Path) -> set[str]:
    keys: set[str] = set()
    for db in cache_dir.glob("attributes.*.sqlite"):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        keys |= {k for (k,) in con.execute("SELECT cache_key FROM results")}
        con.close()
    return keys


def test_sigkill_mid_run_then_rerun_repeats_no_request(dataset_path: Path, tmp_path: Path) -> None:
    out, log = tmp_path / "out", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(dataset_path), str(out), str(log), "0.15"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until a few batches are answered, then kill -9
            if log.exists() and len(log.read_text().split()) >= 9:
                break
            if proc.poll() is not None:
                raise AssertionError(f"worker ended early: {proc.stdout.read().decode()}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    artifact = out / "augment" / "item_attributes"
    assert not artifact.exists() and (out / "augment" / ".item_attributes.partial").is_dir()
    finished = _cached_keys(out / "augment" / "cache")
    assert len(finished) >= 6  # batches answered before the kill are stored

    rerun = FakeBackend(valid_text)
    path = augment(CONFIG, dataset_path, out, progress=False, backend=rerun)["attributes"]
    sent = [r.cache_key(rerun.model_id, TEMPLATE_VERSIONS["attributes"]) for r in rerun.calls]
    assert finished.isdisjoint(sent), "a request finished before the kill was sent again"
    records = pl.read_parquet(path / "records.parquet")
    assert len(sent) == records.height - len(finished)

    fresh = augment(CONFIG, dataset_path, tmp_path / "fresh", progress=False,
                    backend=FakeBackend(valid_text))["attributes"]
    for name in ("records", "failures", "responses"):
        a = pl.read_parquet(path / f"{name}.parquet").drop("prompt_tokens", "completion_tokens", strict=False)
        b = pl.read_parquet(fresh / f"{name}.parquet").drop("prompt_tokens", "completion_tokens", strict=False)
        assert a.equals(b), name
    assert (path / "records.parquet").read_bytes() == (fresh / "records.parquet").read_bytes()
