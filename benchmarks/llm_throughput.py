"""LLM-stage throughput: requests/s, tokens/s, schema-valid rate and prefix-cache hit rate of one backend.

    python benchmarks/llm_throughput.py                                    # smoke model, best installed backend
    python benchmarks/llm_throughput.py --backend vllm --model qwen2-7b --n-requests 2000
    python benchmarks/llm_throughput.py --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen2-7b

The workload imitates the augmentation jobs: a long instruction shared by every request comes first (what prefix
caching is for), then a per-user part (a watch history of synthetic titles and K candidates); the requests cycle
through the pair schema (candidate positions), the item-attribute schema and the user-profile schema. Every answer is
checked with strict ``json.loads`` and ``jsonschema``. The last printed line is one JSON object (machine-readable);
engine start-up is reported separately and excluded from the rates.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmrec_local.errors import ModelNotFoundError
from llmrec_local.llm import GenRequest, Sampling, make_backend, resolve_kind, resolve_model
from llmrec_local.llm.smoke import build_smoke_model

GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
INSTRUCTION = (
    "You are a movie recommendation assistant. You read a user's viewing history (title, year, genres) and a "
    "numbered list of candidate movies, and you answer strictly in the requested JSON format. Candidates are "
    "referred to by their position in the list, starting at 0. When you do not know a fact, answer \"unknown\". "
    "Be concise; never add commentary outside the JSON object. ") * 2


def schemas(k: int) -> dict[str, dict[str, Any]]:
    """The three augmentation answer shapes (pair positions, item attributes, user profile)."""
    text = {"type": "string", "minLength": 1, "maxLength": 24}
    genre_list = {"type": "array", "items": {"type": "string", "enum": GENRES}, "maxItems": 3}
    return {
        "pair": {"type": "object", "additionalProperties": False, "required": ["liked", "disliked"],
                 "properties": {"liked": {"type": "integer", "enum": list(range(k))},
                                "disliked": {"type": "integer", "enum": list(range(k))}}},
        "attributes": {"type": "object", "additionalProperties": False,
                       "required": ["director", "country", "language"],
                       "properties": {"director": text, "country": text, "language": text}},
        "profile": {"type": "object", "additionalProperties": False,
                    "required": ["age", "gender", "liked_genres", "disliked_genres", "country", "language"],
                    "properties": {"age": {"type": "string", "enum": ["under 18", "18-24", "25-34", "35-44",
                                                                      "45-49", "50-55", "56+", "unknown"]},
                                   "gender": {"type": "string", "enum": ["female", "male", "other", "unknown"]},
                                   "liked_genres": genre_list, "disliked_genres": genre_list,
                                   "country": text, "language": text}},
    }


def make_requests(n: int, k: int, history: int, max_tokens: int, temperature: float,
                  seed: int) -> list[GenRequest]:
    """`n` requests cycling through the three jobs, with a shared instruction prefix and per-user parts."""
    rnd = random.Random(seed)
    shapes = schemas(k)
    kinds = list(shapes)

    def title() -> str:
        words = rnd.sample(["Night", "River", "Last", "Summer", "Star", "Secret", "City", "Ghost", "King", "Road",
                            "Love", "War", "Dream", "Iron", "Blue", "Lost"], 2)
        return f"{' '.join(words)} ({rnd.randint(1950, 2020)}) [{', '.join(rnd.sample(GENRES, 2))}]"

    requests = []
    for i in range(n):
        job = kinds[i % len(kinds)]
        watched = "\n".join(f"- {title()}" for _ in range(history))
        if job == "pair":
            cands = "\n".join(f"{p}. {title()}" for p in range(k))
            task = f"History:\n{watched}\nCandidates:\n{cands}\nPick the candidate the user likes most and least."
        elif job == "attributes":
            task = f"Movie: {title()}\nGive its director, country and language."
        else:
            task = f"History:\n{watched}\nDescribe the user: age, gender, liked and disliked genres, country, language."
        requests.append(GenRequest(
            key=f"{job}:{i}", json_schema=shapes[job],
            messages=({"role": "system", "content": INSTRUCTION}, {"role": "user", "content": task}),
            sampling=Sampling(max_tokens=max_tokens, temperature=temperature, top_p=1.0, seed=seed + i)))
    return requests


def valid_rate(requests: Sequence[GenRequest], texts: Sequence[str]) -> float:
    """Share of answers that parse with strict ``json.loads`` and satisfy their schema."""
    import jsonschema

    ok = 0
    for req, text in zip(requests, texts, strict=True):
        try:
            jsonschema.validate(json.loads(text), req.json_schema)
            ok += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    return ok / len(requests) if requests else 0.0


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected key=value")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def smoke_model_path(models_dir: str | None) -> str:
    """The smoke alias when it is on disk, else a smoke model built into the temp dir (seconds, offline)."""
    try:
        return str(resolve_model("smoke", models_dir=models_dir).path)
    except ModelNotFoundError:
        return str(build_smoke_model(Path(tempfile.gettempdir()) / "llmrec_local_smoke_llm"))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="auto", choices=["auto", "vllm", "openai", "transformers"])
    parser.add_argument("--model", default="smoke", help="registry alias or folder (openai: served model name)")
    parser.add_argument("--models-dir", help="models directory searched first")
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--n-requests", type=int, default=256)
    parser.add_argument("--k", type=int, default=10, help="candidates per pair request")
    parser.add_argument("--history", type=int, default=10, help="history titles per user")
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", type=_option, action="append", default=[],
                        help="backend option key=value (JSON value), e.g. --option tensor_parallel_size=2")
    args = parser.parse_args(argv)

    kind = resolve_kind(args.backend)
    model = args.model
    if model == "smoke" and kind != "openai":
        model = smoke_model_path(args.models_dir)
    options = dict(args.option)
    if kind == "vllm" and model.endswith("llmrec_local_smoke_llm") and "max_model_len" not in options:
        options["max_model_len"] = 2048
    t0 = time.perf_counter()
    backend = make_backend(kind, model, models_dir=args.models_dir, base_url=args.base_url, **options)
    startup_s = time.perf_counter() - t0
    requests = make_requests(args.n_requests, args.k, args.history, args.max_tokens, args.temperature, args.seed)
    try:
        results = backend.generate(requests)
    finally:
        backend.close()
    usage = backend.usage.as_dict()
    report = {
        "backend": kind, "model": backend.model_id, "n_requests": len(requests),
        "requests_per_s": usage["requests_per_s"], "prompt_tokens_per_s": usage["prompt_tokens_per_s"],
        "output_tokens_per_s": usage["output_tokens_per_s"],
        "valid_rate": round(valid_rate(requests, [r.text for r in results]), 4),
        "prefix_cache_hit_rate": None if usage["prefix_cache_hit_rate"] is None
        else round(usage["prefix_cache_hit_rate"], 4),
        "errors": sum(r.error is not None for r in results),
        "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
        "wall_s": usage["wall_s"], "startup_s": round(startup_s, 2),
    }
    print(json.dumps(report), flush=True)
    return report


if __name__ == "__main__":

    main()
    sys.exit(0)
