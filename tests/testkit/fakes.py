"""Scripted FakeBackend answers and a stand-in training run for the augmentation tests (unit tests of logic only)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_local.llm.base import GenRequest


def job_of(req: GenRequest) -> str:
    return req.key.split(":")[0]


def valid_answer(req: GenRequest) -> dict[str, Any]:
    """A valid answer for any job's request (pairs: the first two positions; others: fixed values)."""
    job = job_of(req)
    if job == "pairs":
        return {"liked": 0, "disliked": 1}
    if job == "attributes":
        title = re.search(r"Movie: (.*)", req.messages[-1]["content"]).group(1)
        props = req.json_schema["properties"]
        values = {"director": f"Director of {title[:20]}", "country": "USA", "language": "en"}
        return {f: values.get(f, "unknown") for f in props}
    genres = req.json_schema["properties"]["liked_genres"]["items"].get("enum", ["Drama", "Comedy"])
    return {"age": "25-34", "gender": "female", "liked_genres": genres[:1], "disliked_genres": genres[1:2],
            "liked_directors": ["Jane Doe"], "country": "U.S.", "language": "English"}


def valid_text(req: GenRequest) -> str:
    return json.dumps(valid_answer(req))


def write_run(run_dir: Path, n_users: int, n_items: int, dim: int = 8, seed: int = 0) -> Path:
    """A stand-in training run: only ``embeddings.safetensors`` (what the candidate step reads)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file({"user": rng.normal(size=(n_users, dim)).astype(np.float32),
               "item": rng.normal(size=(n_items, dim)).astype(np.float32)}, str(run_dir / "embeddings.safetensors"))
    return run_dir
