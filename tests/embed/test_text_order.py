"""The text encoder's batching and precision settings: passes sorted by length over all texts with the vectors put
back in input order; tokenize + forward is one pass; float16 (CUDA) keys the cache apart while the default dtype
keeps the pinned keys and hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_local.config import config_hash
from llmrec_local.embed.cache import EmbeddingCache
from llmrec_local.embed.config import EmbedConfig
from llmrec_local.embed.image import ImageEncoder
from llmrec_local.embed.stage import build_text_encoder
from llmrec_local.embed.text import TextEncoder

# Lengths chosen so that input order and length order disagree across passes of 3.
TEXTS = ["war", "a long slow documentary about the battles of the great war in the trenches",
         "space pirates", "a romantic comedy with a loud wedding and two clumsy friends", "quiet garden drama",
         "heist", "the last summer on the island of lost kings and golden queens", "love"]


@pytest.fixture(scope="module")
def encoder(minilm_dir: Path) -> TextEncoder:
    return TextEncoder(minilm_dir, name="all-minilm-l6-v2", device="cpu", batch_size=3, progress=False)


def test_passes_are_sorted_over_all_texts_and_vectors_come_back_in_input_order(encoder: TextEncoder) -> None:
    assert len({len(t) for t in TEXTS}) == len(TEXTS)  # no ties: the length order is unique
    groups = encoder.batches(TEXTS)
    order = [i for g in groups for i in g]
    assert sorted(order) == list(range(len(TEXTS))) and [len(g) for g in groups] == [3, 3, 2]
    lengths = [len(TEXTS[i]) for i in order]
    assert lengths == sorted(lengths, reverse=True)  # one global sort, not one per pass of consecutive texts
    vectors = encoder.encode(TEXTS)
    # Row i is texts[i]'s vector: equal (padding aside) to encoding it alone ...
    alone = np.concatenate([encoder.encode_batch([t]) for t in TEXTS])
    np.testing.assert_allclose(vectors, alone, atol=1e-6)
    # ... and to the reversed input's vectors reversed back (the passes hold the same texts, so bit for bit).
    assert np.array_equal(encoder.encode(TEXTS[::-1])[::-1], vectors)
    # each pass of `encode` is exactly `encode_batch` of its texts (the unit the Ray executor ships)
    for rows in groups:
        assert np.array_equal(vectors[rows], encoder.encode_batch([TEXTS[i] for i in rows]))


def test_tokenize_then_forward_is_one_pass(encoder: TextEncoder) -> None:
    features = encoder.tokenize(TEXTS[:3])
    mask = features["attention_mask"]
    assert mask.shape[0] == 3 and int(mask.sum(1).max()) == mask.shape[1]  # padded to the longest of the pass
    vectors = encoder.forward(features)
    assert str(vectors.dtype) == "torch.float32" and tuple(vectors.shape) == (3, 384)
    assert np.array_equal(vectors.numpy(), encoder.encode_batch(TEXTS[:3]))


def test_float16_keys_the_cache_apart(minilm_dir: Path, clip_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No model is loaded: the dtype resolves when the encoder is built, and the key covers it."""
    import torch

    cpu = TextEncoder(minilm_dir, name="m", device="cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolve as on a CUDA machine
    half = TextEncoder(minilm_dir, name="m", device="cuda")  # auto -> float16 on CUDA
    full = TextEncoder(minilm_dir, name="m", device="cuda", dtype="float32")
    assert (cpu.dtype, half.dtype, full.dtype) == ("float32", "float16", "float32")
    assert half.key != cpu.key and full.key == cpu.key  # the device is not in the key, the precision is
    assert EmbeddingCache(tmp_path, half.key).folder != EmbeddingCache(tmp_path, cpu.key).folder
    clip_cpu = ImageEncoder(clip_dir, name="c", device="cpu")
    clip_half = ImageEncoder(clip_dir, name="c", device="cuda")
    assert clip_half.dtype == "float16" and clip_half.key != clip_cpu.key


def test_default_dtype_keeps_the_pinned_keys() -> None:
    """dtype = "auto" resolves to float32 on the CPU: the MiniLM's cache key (hence every embedding artifact's config
    hash) and the [embed] config hash are the ones pinned before the throughput work."""
    encoder = build_text_encoder(EmbedConfig(device="cpu"), progress=False)
    assert encoder.dtype == "float32"
    assert encoder.key == "b3a6340d82678073ffffeeb69994ba31"
    assert build_text_encoder(EmbedConfig(device="cpu", dtype="float32"), progress=False).key == encoder.key
    assert config_hash(EmbedConfig()) == "48f5d4a92a852dcd"

