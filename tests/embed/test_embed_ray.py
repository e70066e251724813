"""The embed stage on the Ray executor (a local Ray runtime; the real MiniLM and a tiny random CLIP in the actors):
the vectors and masks equal those of the single-process run bit for bit (numpy array_equal)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.embeddings import load_embedding
from llmrec_local.embed.config import EmbedConfig
from llmrec_local.embed.stage import embed
from llmrec_local.executors.ray_executor import RaySettings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_runtime")]


def test_text_and_image_vectors_on_ray_equal_the_local_ones(dataset: Path, clip_dir: Path, minilm_dir: Path,
                                                            tmp_path: Path) -> None:
    # Two rows per forward pass: the five texts and four poster files make several batches for the two actors.
    # Each run gets its own embedding cache: with the shared one the second run would read every vector from the
    # first run's cache and the actors would encode nothing.
    local = EmbedConfig(sources=("item_text", "item_image"), image_model=str(clip_dir), device="cpu", batch_size=2,
                        cache_dir=str(tmp_path / "cache_local"))
    pooled = dataclasses.replace(local, executor="ray", ray=RaySettings(num_engines=2),
                                 cache_dir=str(tmp_path / "cache_ray"))
    here = embed(local, dataset, tmp_path / "local", progress=False)
    there = embed(pooled, dataset, tmp_path / "ray", progress=False)
    for source, n in (("item_text", 6), ("item_image", 6)):
        a, b = load_embedding(here[source], n, entity="item"), load_embedding(there[source], n, entity="item")
        assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.mask, b.mask), source
        assert read_manifest(there[source])["counts"] == read_manifest(here[source])["counts"]
    assert read_manifest(there["item_image"])["counts"]["unreadable"] == 1  # the corrupt poster, on an actor
