"""A scripted LLM backend (`FakeBackend`), its valid answers, and a stand-in training run, for unit tests of the
logic above the LLM backends (augmentation jobs, the pipeline runner)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_local.llm.base import GenRequest, GenResult, UsageStats


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


class FakeBackend:
    """Scripted backend for unit tests of the logic above the backends (benchmarks and the demo run real ones).

    `respond(request) -> str | dict` gives each answer (a dict is JSON-encoded); it may raise to simulate a backend
    error for that request. Every request seen is appended to `calls`, so tests can count repeated requests.
    """

    def __init__(self, respond: Callable[[GenRequest], str | dict[str, Any]], model_id: str = "fake") -> None:
        self.respond = respond
        self.model_id = model_id
        self.usage = UsageStats()
        self.calls: list[GenRequest] = []

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        out = []
        for req in requests:
            self.calls.append(req)
            try:
                answer = self.respond(req)
                text = answer if isinstance(answer, str) else json.dumps(answer)
                out.append(GenResult(req.key, text, prompt_tokens=1, completion_tokens=1))
            except Exception as exc:  # noqa: BLE001 - a scripted failure becomes a per-request error, as in real backends
                out.append(GenResult(req.key, "", finish_reason="error", error=str(exc)))
        self.usage.requests += len(requests)
        self.usage.prompt_tokens += len(requests)
        self.usage.completion_tokens += len(requests)
        return out

    def close(self) -> None:
        pass


def rewrite_artifact_file(folder: Path, name: str, write: Callable[[Path], None]) -> None:
    """Republish the complete artifact `folder` with its file `name` rewritten by ``write(path)``, the way its stage
    would (through ArtifactWriter: new file list, sizes, digests), keeping its stage, config hash and manifest
    fields. Tests use it to stand for "the upstream stage was rerun and produced other content"."""
    import shutil

    from llmrec_local.artifacts.base import ArtifactWriter, read_manifest

    manifest = read_manifest(folder)
    with ArtifactWriter(folder, stage=manifest["stage"], config_hash=manifest["config_hash"],
                        inputs=manifest.get("input_digests") or {}) as w:
        for item in folder.iterdir():
            if item.name in ("manifest.json", "_COMPLETE"):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, w.dir / item.name)
        write(w.dir / name)
        w.manifest.update({k: v for k, v in manifest.items() if k not in (
            "files", "content_digest", "input_digests", "created_at", "wall_s", "code_version", "libraries",
            "hardware", "stage", "schema_version", "config_hash")})
