"""Fixtures for the embed tests: the real MiniLM (materialised into a session cache), a tiny random open_clip
model, and a small hand-built dataset artifact with generated posters and augmentation records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import ArtifactWriter
from llmrec_local.embed import minilm

TITLES = [
    ("Laugh Out Loud", 1999, ["Comedy"]),
    ("Funny Business", 2004, ["Comedy", "Romance"]),
    ("Battle of the Somme", 1985, ["Documentary", "War"]),
    ("Space Pirates", 2012, ["Action", "Sci-Fi"]),
    ("Quiet Garden", 2018, ["Drama"]),
    (None, None, []),  # an item with no text at all
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session-wide LLMREC_CACHE_DIR, so the MiniLM is extracted once and never into the user's home."""
    path = tmp_path_factory.mktemp("llmrec_cache")
    old = os.environ.get("LLMREC_CACHE_DIR")
    os.environ["LLMREC_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LLMREC_CACHE_DIR", None)
    else:
        os.environ["LLMREC_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def embedding_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh shared embedding cache per test, so encoder-call counts do not depend on the tests run before."""
    path = tmp_path / "embedding_cache"
    monkeypatch.setenv("LLMREC_EMBED_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def minilm_dir(cache_dir: Path) -> Path:
    return minilm.materialize()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llmrec_local.embed.image import save_random_clip

    return save_random_clip(tmp_path_factory.mktemp("tiny_clip") / "tiny-clip", seed=0)


def write_poster(path: Path, seed: int, size: tuple[int, int] = (48, 72)) -> Path:
    """A random RGB PNG (a stand-in poster)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_dataset(root: Path, titles: list = TITLES, n_users: int = 4) -> Path:
    """A tiny dataset artifact following the prepare contract. Posters: items 0-2 have PNGs, item 3 names a missing
    file, item 4 a corrupt file, item 5 none."""
    n_items = len(titles)
    path = root / "dataset"
    with ArtifactWriter(path, stage="prepare", config_hash="test") as w:
        posters = w.dir / "posters"
        posters.mkdir()
        image_paths: list[str | None] = []
        for i in range(n_items):
            if i < 3:
                write_poster(posters / f"{i}.png", seed=i)
                image_paths.append(f"posters/{i}.png")
            elif i == 3:
                image_paths.append("posters/missing.png")
            elif i == 4:
                (posters / "broken.png").write_bytes(b"not an image")
                image_paths.append("posters/broken.png")
            else:
                image_paths.append(None)
        items = pl.DataFrame(
            {
                "item": list(range(n_items)),
                "item_id": [f"m{i}" for i in range(n_items)],
                "title": [t for t, _, _ in titles],
                "year": [y for _, y, _ in titles],
                "genres": [g for _, _, g in titles],
                "image_path": image_paths,
                "tags": ["hilarious" if i == 0 else None for i in range(n_items)],
            },
            schema={"item": pl.Int64, "item_id": pl.String, "title": pl.String, "year": pl.Int32,
                    "genres": pl.List(pl.String), "image_path": pl.String, "tags": pl.String},
        )
        items.write_parquet(w.dir / "items.parquet")
        pl.DataFrame({"user": list(range(n_users)), "user_id": [f"u{u}" for u in range(n_users)]},
                     schema={"user": pl.Int64, "user_id": pl.String}).write_parquet(w.dir / "users.parquet")
        pairs = [(u, i) for u in range(n_users) for i in range(n_items) if (u + i) % 2 == 0]
        pl.DataFrame({"user": [u for u, _ in pairs], "item": [i for _, i in pairs],
                      "rating": [None] * len(pairs), "timestamp": [None] * len(pairs)},
                     schema={"user": pl.Int64, "item": pl.Int64, "rating": pl.Float64,
                             "timestamp": pl.Int64}).write_parquet(w.dir / "interactions.parquet")
        pl.DataFrame({"user": [u for u, _ in pairs], "item": [i for _, i in pairs], "split": ["train"] * len(pairs)},
                     schema={"user": pl.Int64, "item": pl.Int64, "split": pl.String}
                     ).write_parquet(w.dir / "split.parquet")
        w.manifest.update(n_users=n_users, n_items=n_items)
    return path


def write_augment(root: Path, n_users: int = 4) -> Path:
    """Augmentation records: attributes for items 0-3 (item 4, 5 absent), profiles for users 0-2."""
    aug = root / "augment"
    (aug / "item_attributes").mkdir(parents=True)
    (aug / "user_profiles").mkdir(parents=True)
    pl.DataFrame({
        "item": [0, 1, 2, 3],
        "director": ["Jane Doe", "Jane Doe", "unknown", "Rick Roe"],
        "country": ["USA", "USA", "UK", None],
        "language": ["English", "English", "English", "French"],
        "cache_key": ["a", "b", "c", "d"],
    }, schema={"item": pl.Int64, "director": pl.String, "country": pl.String, "language": pl.String,
               "cache_key": pl.String}).write_parquet(aug / "item_attributes" / "records.parquet")
    pl.DataFrame({
        "user": [0, 1, 2],
        "profile_text": ["age: 25-34. liked genres: Comedy", "age: 45-54. liked genres: War, Documentary", ""],
    }, schema={"user": pl.Int64, "profile_text": pl.String}).write_parquet(aug / "user_profiles" / "records.parquet")
    return aug


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path)


@pytest.fixture
def augment(tmp_path: Path) -> Path:
    return write_augment(tmp_path)


@pytest.fixture
def make_poster():
    """``make_poster(path, seed, size=(w, h))`` writes a random RGB PNG."""
    return write_poster
