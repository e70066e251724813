"""The real MiniLM through TextEncoder: semantics, normalisation, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_local.embed.text import TextEncoder
from llmrec_local.errors import ConfigError


@pytest.fixture(scope="module")
def encoder(minilm_dir: Path) -> TextEncoder:
    return TextEncoder(minilm_dir, name="all-minilm-l6-v2", device="cpu", batch_size=8)


def test_related_texts_are_closer(encoder: TextEncoder) -> None:
    vectors = encoder.encode([
        "A slapstick comedy about two clumsy friends. Genres: Comedy",
        "A hilarious romantic comedy full of jokes. Genres: Comedy, Romance",
        "A documentary about the battles of World War II. Genres: Documentary, War",
    ])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert sim[0, 1] > sim[1, 2] + 0.2


def test_batching_does_not_change_vectors(encoder: TextEncoder, minilm_dir: Path) -> None:
    texts = [f"movie number {i} about {w}" for i, w in enumerate(["cats", "space", "war", "love", "food"] * 2)]
    small = TextEncoder(minilm_dir, name="m", device="cpu", batch_size=2).encode(texts)
    np.testing.assert_allclose(small, encoder.encode(texts), atol=1e-5)


def test_identity_and_key(encoder: TextEncoder, minilm_dir: Path) -> None:
    ident = encoder.identity
    assert ident["dtype"] == "float32" and ident["normalize"] is True
    other = TextEncoder(minilm_dir, name="all-minilm-l6-v2", device="cpu", normalize=False)
    assert other.key != encoder.key  # normalisation changes vectors, so it changes the cache key
    assert encoder.dim == 384


def test_max_seq_length_truncates(minilm_dir: Path, encoder: TextEncoder) -> None:
    text = "space opera " * 40 + "with a romantic comedy ending"
    short = TextEncoder(minilm_dir, name="m", device="cpu", max_seq_length=8)
    assert not np.allclose(short.encode([text]), encoder.encode([text]), atol=1e-3)
    assert short.key != encoder.key
    with pytest.raises(ConfigError, match="exceeds the 512 positions"):
        TextEncoder(minilm_dir, name="m", device="cpu", max_seq_length=4096).encode(["x"])


def test_bad_settings(minilm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="float16 needs a CUDA device"):
        TextEncoder(minilm_dir, name="m", device="cpu", dtype="float16")
    with pytest.raises(ConfigError, match="batch_size"):
        TextEncoder(minilm_dir, name="m", device="cpu", batch_size=0)


def test_encode_runs_the_forward_passes_of_one_sentence_transformers_call(minilm_dir: Path) -> None:
    """`batches` is sentence-transformers' own grouping (longest first), so `encode` (one pass per batch, the unit
    the Ray executor ships to an actor) gives bit for bit the vectors of one `SentenceTransformer.encode` call."""
    texts = [f"movie {i} " + "long " * (i % 5) + ("Comedy" if i % 3 else "") for i in range(11)]
    encoder = TextEncoder(minilm_dir, name="m", device="cpu", batch_size=3, progress=False)
    groups = encoder.batches(texts)
    assert [len(g) for g in groups] == [3, 3, 3, 2] and sorted(sum(groups, [])) == list(range(11))
    assert all(len(texts[a]) >= len(texts[b]) for g, h in zip(groups, groups[1:]) for a in g for b in h)
    reference = encoder._load().encode(texts, batch_size=3, convert_to_numpy=True, normalize_embeddings=True)
    assert np.array_equal(encoder.encode(texts), reference)
