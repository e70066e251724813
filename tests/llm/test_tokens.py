"""Prompt tokens counted with the model's tokenizer, and the prefix-cache arithmetic (`llmrec_local.llm.tokens`)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from testkit.llm import make_requests

from llmrec_local.llm.tokens import (
    load_prompt_tokenizer,
    n_tokens,
    pack_ids,
    prefix_cache_hits,
    prefix_order,
    shared_prefix_lengths,
)


def _brute_shared(prompts: list[list[int]]) -> list[int]:
    out = []
    for i, p in enumerate(prompts):
        best = 0
        for q in prompts[:i]:
            n = 0
            while n < min(len(p), len(q)) and p[n] == q[n]:
                n += 1
            best = max(best, n)
        out.append(best)
    return out


def _vllm_like_hits(prompts: list[list[int]], block: int) -> list[int]:
    """A block-hash cache as vLLM keeps it: a block is keyed by the whole prefix up to its end; a prompt hits its
    leading cached full blocks inside its first len-1 tokens, then caches all its full blocks."""
    cached: set[tuple[int, ...]] = set()
    hits = []
    for p in prompts:
        n = 0
        while (n + 1) * block <= len(p) - 1 and tuple(p[:(n + 1) * block]) in cached:
            n += 1
        hits.append(n * block)
        cached.update(tuple(p[:(j + 1) * block]) for j in range(len(p) // block))
    return hits


def _random_prompts(seed: int, n: int = 40) -> list[list[int]]:
    rnd = random.Random(seed)
    stems = [[rnd.randrange(5) for _ in range(rnd.randint(0, 12))] for _ in range(4)]
    return [rnd.choice(stems) + [rnd.randrange(3) for _ in range(rnd.randint(1, 10))] for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_shared_prefix_lengths_equal_brute_force(seed: int) -> None:
    prompts = _random_prompts(seed)
    assert shared_prefix_lengths(prompts) == _brute_shared(prompts)


@pytest.mark.parametrize("block", [1, 2, 4, 16])
def test_prefix_cache_hits_equal_a_block_hash_cache(block: int) -> None:
    for seed in range(4):
        prompts = _random_prompts(seed)
        assert prefix_cache_hits(prompts, block) == _vllm_like_hits(prompts, block)


def test_a_fully_cached_prompt_still_computes_its_last_token() -> None:
    assert prefix_cache_hits([[1, 2, 3, 4], [1, 2, 3, 4]], 1) == [0, 3]
    assert prefix_cache_hits([[1, 2, 3, 4], [1, 2, 3, 4]], 2) == [0, 2]


def test_prefix_order_puts_shared_prefixes_side_by_side() -> None:
    """Constructed: two families of prompts interleaved; sorted, each family is contiguous, the sum of the common
    prefixes of neighbours is the largest of all orders, and cut into batches of 3 every batch holds one family."""
    a = [[7, 7, 7, 7, 7, 7, i] for i in range(3)]
    b = [[9, 9, 9, 9, 9, 9, i] for i in range(3)]
    prompts = [a[0], b[0], a[1], b[1], a[2], b[2]]
    order = prefix_order(prompts)
    assert [prompts[i][0] for i in order] == [7, 7, 7, 9, 9, 9]

    def adjacent(seq: list[list[int]]) -> int:
        return sum(_brute_shared([x, y])[1] for x, y in zip(seq, seq[1:]))

    import itertools

    best = max(adjacent(list(p)) for p in itertools.permutations(prompts))
    assert adjacent([prompts[i] for i in order]) == best
    sorted_prompts = [prompts[i] for i in order]
    per_batch = lambda seq: sum(sum(prefix_cache_hits(seq[s:s + 3], 1)) for s in range(0, 6, 3))  # noqa: E731
    assert per_batch(sorted_prompts) == 4 * 6 > per_batch(prompts) == 2 * 6


def test_prefix_order_is_deterministic_with_ties() -> None:
    prompts = [[1, 2], [1, 2], [0]]
    assert prefix_order(prompts, ["b", "a", "c"]) == [2, 1, 0]


@pytest.fixture(scope="module")
def tokenizer(smoke_model: Path):
    return load_prompt_tokenizer(smoke_model)


def test_counted_prompt_tokens_equal_the_backends_count(tokenizer, smoke_model: Path) -> None:
    """The planning count is the count the transformers backend reports (and vLLM: docs/results.md, token plan)."""
    from transformers import AutoTokenizer

    from llmrec_local.llm.hf_backend import TransformersBackend

    reqs = make_requests(4, temperature=0.0, max_tokens=8)
    ids = tokenizer.chat_ids([r.messages for r in reqs])
    hf = AutoTokenizer.from_pretrained(smoke_model)
    independent = [hf(hf.apply_chat_template(list(r.messages), tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"] for r in reqs]
    assert ids == independent
    assert ids[0][-3:] == hf("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-3:]
    backend = TransformersBackend(smoke_model, dtype="float32", show_progress=False)
    try:
        results = backend.generate(reqs)
    finally:
        backend.close()
    assert [r.prompt_tokens for r in results] == [len(x) for x in ids]
    assert tokenizer.count(["- Toy Story (1995)", ""]) == [len(hf("- Toy Story (1995)", add_special_tokens=False)["input_ids"]), 0]


def test_packed_ids_sort_like_the_lists_and_give_the_same_counts() -> None:
    rnd = random.Random(3)
    prompts = [[rnd.choice([0, 1, 255, 256, 70000, 151645]) for _ in range(rnd.randint(0, 6))] for _ in range(200)]
    packed = [pack_ids(p) for p in prompts]
    assert sorted(range(200), key=lambda i: (tuple(prompts[i]), i)) == prefix_order(packed) == prefix_order(prompts)
    assert [n_tokens(p) for p in packed] == [len(p) for p in prompts]
    assert shared_prefix_lengths(packed) == _brute_shared(prompts)
    assert prefix_cache_hits(packed, 2) == _vllm_like_hits(prompts, 2)
