"""On-disk request cache: the basis of resume.

Each answered request is stored under ``GenRequest.cache_key(model_id, template_version)`` (a hash of model, template
version, sampling, messages and schema), so a rerun looks its requests up and sends only the missing ones. Backend
errors go to a separate table and are never served as answers: a request that errored is simply sent again.

Storage is SQLite (stdlib, transactional): every `put` is one transaction with ``synchronous=FULL``, so a process
killed at any instant (kill -9) leaves every batch either fully stored or absent. A cache is a folder holding one
database file per writer (``<job>.<tag>.sqlite``; one tag per shard), so shards on a shared filesystem never write
to the same file; lookups read every file of the job in the folder, so any earlier run's answers are reused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..llm.base import GenResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    cache_key TEXT PRIMARY KEY, request_key TEXT NOT NULL, text TEXT NOT NULL, finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT, cache_key TEXT NOT NULL, request_key TEXT NOT NULL,
    error TEXT NOT NULL, created REAL NOT NULL);
"""


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    else:
        con = sqlite3.connect(path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.executescript(_SCHEMA)
    return con


class RequestCache:
    """Cache of one job's answers in `directory`; this process writes ``<job>.<tag>.sqlite`` only.

    Use as a context manager or call `close()`.
    """

    def __init__(self, directory: str | Path, job: str, tag: str = "main") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.job = job
        self.path = self.directory / f"{job}.{tag}.sqlite"
        self._own = _connect(self.path, readonly=False)
        self._others = [
            _connect(p, readonly=True) for p in sorted(self.directory.glob(f"{job}.*.sqlite")) if p != self.path
        ]

    def __enter__(self) -> "RequestCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for con in (self._own, *self._others):
            con.close()
        self._others = []

    def get_many(self, cache_keys: Sequence[str]) -> dict[str, GenResult]:
        """Stored answers for the given keys (absent keys are missing from the dict). `GenResult.key` holds the
        request key the answer was stored for."""
        found: dict[str, GenResult] = {}
        wanted = list(dict.fromkeys(cache_keys))
        for con in (self._own, *self._others):
            missing = [k for k in wanted if k not in found]
            for start in range(0, len(missing), 500):  # SQLite caps bound parameters per statement
                chunk = missing[start:start + 500]
                rows = con.execute(
                    "SELECT cache_key, request_key, text, finish_reason, prompt_tokens, completion_tokens FROM "
                    f"results WHERE cache_key IN ({','.join('?' * len(chunk))})", chunk,
                ).fetchall()
                for ck, rk, text, fr, pt, ct in rows:
                    found[ck] = GenResult(rk, text, fr, pt, ct)
        return found

    def put(self, entries: Iterable[tuple[str, GenResult]]) -> tuple[int, int]:
        """Store ``(cache_key, result)`` pairs in one durable transaction; results with `error` go to the errors
        table. Returns (answers stored, errors stored)."""
        now = time.time()
        answers, errors = [], []
        for ck, res in entries:
            if res.error is not None:
                errors.append((ck, res.key, res.error, now))
            else:
                answers.append((ck, res.key, res.text, res.finish_reason, res.prompt_tokens,
                                res.completion_tokens, now))
        with self._own:
            self._own.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?)", answers)
            self._own.executemany(
                "INSERT INTO errors (cache_key, request_key, error, created) VALUES (?,?,?,?)", errors
            )
        return len(answers), len(errors)

    def completion_stats(self) -> tuple[int, int]:
        """(answers, their completion tokens summed) over every file of this job in the folder: the evidence a token
        plan's expected output comes from when no earlier job of the model was timed."""
        n = total = 0
        for con in (self._own, *self._others):
            rows, tokens = con.execute("SELECT COUNT(*), COALESCE(SUM(completion_tokens), 0) FROM results").fetchone()
            n, total = n + int(rows), total + int(tokens)
        return n, total

    def count(self) -> tuple[int, int]:
        """(answers, errors) stored in this process's own file."""
        answers = self._own.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        errors = self._own.execute("SELECT COUNT(*) FROM errors").fetchone()[0]
        return answers, errors
