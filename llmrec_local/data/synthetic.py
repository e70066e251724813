"""A planted-preference synthetic dataset, written as raw files so that tests go through the real loaders.

Generative model (all draws from ``numpy_rng(seed, "synthetic", ...)``):

- genres g = 0..G-1; item i has a primary genre c_i (balanced over genres), a second genre with probability 0.3,
  a year, a title, and a within-genre popularity weight w_i ∝ (1 + r_i)^-0.6 (r_i = the item's rank in its genre);
- user u has hidden demographics (age bucket, gender, country) and two preferred genres P_u; the first is tied to
  the demographics (so profiles are inferable from histories), the second is random;
- user u rates k = interactions_per_user items: 80% drawn (without replacement, ∝ w_i) from items with c_i ∈ P_u,
  rated 4-5, and 20% from other genres, mostly rated 1-3 (10% noise rated 4).

With the default ``min_rating=4`` the positives are ~90% preferred-genre items, so any model that learns user
preferences beats the popularity baseline by a clear margin (ground truth in ``truth.json``).

Popularity component (``popularity`` = q > 0, off by default): before the genre draws, round(q * k) of the k items
are drawn (without replacement) from one catalogue-wide popularity law, w_i ∝ (1 + R_i)^-1 over a global random rank
R_i, and rated 4-5; the genre draws fill the rest from the other items. With a large q, few interactions per user
and one validation item per user (``val_items=1``, LLMRec layout) the split has a long **popularity plateau**: a
model first learns the global popularity (validation recall at the popularity level) and only tens of epochs later
the preferences (`PLATEAU`: the preset that the early-stopping defaults were chosen on, docs/usage.md).

Layouts:
- "generic": interactions.csv (user_id, item_id, rating, timestamp), items.csv (item_id, title, year, genres "A|B",
  description, image_path), users.csv (user_id, member_since only: demographics stay hidden), posters/*.png
  (32x32, colour = primary genre, stripe = second genre), truth.json.
- "llmrec": LLMRec's release files over the positive interactions: train/val/test.json (per-user 70/10/20 random),
  train_mat (pickled CSR), text_feat.npy (n_items, 16) and image_feat.npy (n_items, 8) genre-clustered features,
  item_attribute.csv without header (MovieLens layout ``id,title,genre`` or Netflix ``id,year,title``), truth.json.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse

from ..seeding import numpy_rng

GENRE_NAMES = (
    "Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation", "Documentary", "Fantasy",
    "Crime", "Musical", "Western", "War", "Mystery", "Adventure", "Children", "Film-Noir",
)
AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("female", "male")
COUNTRIES = ("United States", "France", "Japan", "Brazil", "India", "Germany")
_ADJECTIVES = ("Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Distant", "Wild", "Frozen", "Electric",
               "Secret", "Burning", "Lonely", "Iron", "Midnight", "Paper")
_NOUNS = ("River", "Kingdom", "Detective", "Garden", "Signal", "Voyage", "Stranger", "Harbor", "Machine", "Letter",
          "Empire", "Orchard", "Witness", "Comet", "Island", "Promise")


def _genre_names(n_genres: int) -> list[str]:
    return [GENRE_NAMES[g] if g < len(GENRE_NAMES) else f"Genre{g + 1}" for g in range(n_genres)]


def _titles(n_items: int, rng: np.random.Generator) -> list[str]:
    """Unique titles; every fifth uses MovieLens' trailing-article form ("Stranger, The") so titles hold commas."""
    pairs = [(a, b) for a in _ADJECTIVES for b in _NOUNS]
    order = rng.permutation(len(pairs))
    titles = []
    for i in range(n_items):
        adj, noun = pairs[order[i % len(pairs)]]
        base = f"{adj} {noun}, The" if i % 5 == 0 else f"The {adj} {noun}"
        round_ = i // len(pairs)
        titles.append(base if round_ == 0 else f"{base} {round_ + 1}")
    return titles


def _poster(primary: int, secondary: int | None, n_genres: int, rng: np.random.Generator) -> np.ndarray:
    """A (32, 32, 3) uint8 image: a flat hue for the primary genre, a horizontal stripe for the second, light noise."""
    import colorsys

    def rgb(g: int) -> np.ndarray:
        return np.array(colorsys.hsv_to_rgb(g / n_genres, 0.8, 0.9)) * 255

    img = np.tile(rgb(primary), (32, 32, 1))
    if secondary is not None:
        img[12:20] = rgb(secondary)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _simulate(
    n_users: int, n_items: int, n_genres: int, interactions_per_user: int, seed: int, popularity: float = 0.0
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, Any], list[tuple[int, int | None]]]:
    """Draw items, users and rated interactions (integer indices; see the module docstring)."""
    rng = numpy_rng(seed, "synthetic")
    # A separate stream for the popularity component: with popularity = 0 it draws nothing and the main stream's
    # draws (hence every existing dataset) stay exactly what they were.
    pop_rng = numpy_rng(seed, "synthetic", "popularity")
    global_weights = (1.0 + pop_rng.permutation(n_items)) ** -1.0 if popularity > 0 else None
    genres = _genre_names(n_genres)
    primary = rng.permutation(np.arange(n_items) % n_genres)
    second = [int(rng.choice([g for g in range(n_genres) if g != p])) if n_genres > 1 and rng.random() < 0.3
              else None for p in primary]
    weights = np.empty(n_items)
    for g in range(n_genres):
        members = np.flatnonzero(primary == g)
        weights[members] = (1.0 + rng.permutation(len(members))) ** -0.6
    years = rng.integers(1960, 2021, n_items)
    titles = _titles(n_items, rng)

    age = rng.integers(0, len(AGE_BUCKETS), n_users)
    gender = rng.integers(0, len(GENDERS), n_users)
    country = rng.integers(0, len(COUNTRIES), n_users)
    users_truth: dict[str, Any] = {}
    rows_user, rows_item, rows_rating = [], [], []
    k = min(interactions_per_user, n_items)
    for u in range(n_users):
        first = int((age[u] * len(GENDERS) + gender[u]) % n_genres)
        others = [g for g in range(n_genres) if g != first]
        prefs = [first] + ([int(rng.choice(others))] if others else [])
        liked = np.flatnonzero(np.isin(primary, prefs))
        rest = np.flatnonzero(~np.isin(primary, prefs))
        popular: np.ndarray = np.empty(0, dtype=np.int64)
        k_genre = k
        if global_weights is not None:
            popular = pop_rng.choice(n_items, int(round(popularity * k)), replace=False,
                                     p=global_weights / global_weights.sum())
            liked, rest = np.setdiff1d(liked, popular), np.setdiff1d(rest, popular)
            k_genre = k - len(popular)
        n_like = min(len(liked), int(round(0.8 * k_genre)))
        n_rest = min(len(rest), k_genre - n_like)
        pos = rng.choice(liked, n_like, replace=False, p=weights[liked] / weights[liked].sum())
        neg = rng.choice(rest, n_rest, replace=False, p=weights[rest] / weights[rest].sum()) if n_rest else []
        neg_ratings = np.where(rng.random(n_rest) < 0.1, 4.0, rng.integers(1, 4, n_rest).astype(float))
        rows_user += [u] * (n_like + n_rest)
        rows_item += list(pos) + list(neg)
        rows_rating += list(rng.choice([4.0, 5.0], n_like, p=[0.4, 0.6])) + list(neg_ratings)
        if len(popular):
            rows_user += [u] * len(popular)
            rows_item += list(popular)
            rows_rating += list(pop_rng.choice([4.0, 5.0], len(popular)))
        users_truth[str(u)] = {
            "age": AGE_BUCKETS[age[u]], "gender": GENDERS[gender[u]], "country": COUNTRIES[country[u]],
            "preferred_genres": [genres[g] for g in prefs],
        }
    n_rows = len(rows_user)
    # Per-user increasing timestamps, shuffled so the time order is unrelated to the draw order above.
    order = rng.permutation(n_rows)
    base = 1_500_000_000 + np.asarray(rows_user) * 86_400
    timestamps = base + order * 600
    interactions = pl.DataFrame({
        "user": np.asarray(rows_user, dtype=np.int64), "item": np.asarray(rows_item, dtype=np.int64),
        "rating": np.asarray(rows_rating, dtype=np.float64), "timestamp": timestamps.astype(np.int64),
    })
    items = pl.DataFrame({
        "item": np.arange(n_items, dtype=np.int64), "title": titles, "year": years.astype(np.int32),
        "genres": [[genres[p]] + ([genres[s]] if s is not None else []) for p, s in zip(primary, second)],
    })
    users = pl.DataFrame({"user": np.arange(n_users, dtype=np.int64),
                          "member_since": rng.integers(2005, 2020, n_users).astype(np.int32)})
    truth = {
        "seed": seed, "genres": genres, "users": users_truth,
        "items": {str(i): {"primary_genre": genres[p]} for i, p in enumerate(primary)},
    }
    return interactions, items, users, truth, list(zip(primary.tolist(), second))


def _write_generic(out: Path, interactions: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame,
                   truth: dict[str, Any], genre_pairs: list[tuple[int, int | None]], n_genres: int,
                   posters: bool, seed: int) -> None:
    uid = lambda col: pl.format("u{}", pl.col(col).cast(pl.String).str.zfill(4))  # noqa: E731
    iid = lambda col: pl.format("i{}", pl.col(col).cast(pl.String).str.zfill(4))  # noqa: E731
    interactions.select(uid("user").alias("user_id"), iid("item").alias("item_id"), "rating", "timestamp") \
        .write_csv(out / "interactions.csv")
    item_table = items.select(
        iid("item").alias("item_id"), "title", "year", pl.col("genres").list.join("|"),
        pl.format("A {} film from {}.", pl.col("genres").list.first().str.to_lowercase(), pl.col("year"))
        .alias("description"),
    )
    if posters:
        from PIL import Image

        (out / "posters").mkdir(exist_ok=True)
        rng = numpy_rng(seed, "synthetic", "posters")
        for item_id, (p, s) in zip(item_table["item_id"].to_list(), genre_pairs):
            Image.fromarray(_poster(p, s, n_genres, rng)).save(out / "posters" / f"{item_id}.png")
        item_table = item_table.with_columns(pl.format("posters/{}.png", pl.col("item_id")).alias("image_path"))
    item_table.write_csv(out / "items.csv")
    users.select(uid("user").alias("user_id"), "member_since").write_csv(out / "users.csv")
    truth = {**truth, "users": {f"u{int(k):04d}": v for k, v in truth["users"].items()},
             "items": {f"i{int(k):04d}": v for k, v in truth["items"].items()}}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))


def _write_llmrec(out: Path, interactions: pl.DataFrame, items: pl.DataFrame, truth: dict[str, Any],
                  genre_pairs: list[tuple[int, int | None]], n_users: int, n_items: int, n_genres: int,
                  seed: int, attribute_layout: Literal["movielens", "netflix"], val_items: int | None) -> None:
    rng = numpy_rng(seed, "synthetic", "llmrec")
    positives = interactions.filter(pl.col("rating") >= 4.0)
    splits: dict[str, dict[str, list[int]]] = {"train": {}, "val": {}, "test": {}}
    for u in range(n_users):
        items_u = rng.permutation(positives.filter(pl.col("user") == u)["item"].to_numpy())
        n = len(items_u)
        n_test = max(1, round(0.2 * n)) if n >= 2 else 0
        n_val = max(1, round(0.1 * n)) if n - n_test >= 2 else 0
        if val_items is not None:  # a fixed count, as in splits with one held-out item per user
            n_val = min(val_items, n - n_test - 1) if n - n_test >= 2 else 0
        # Empty lists are kept on purpose: LLMRec's files have them and its loader skips them.
        splits["test"][str(u)] = sorted(int(i) for i in items_u[:n_test])
        splits["val"][str(u)] = sorted(int(i) for i in items_u[n_test:n_test + n_val])
        splits["train"][str(u)] = sorted(int(i) for i in items_u[n_test + n_val:])
    for name, mapping in splits.items():
        (out / f"{name}.json").write_text(json.dumps(mapping))
    rows = [int(u) for u, its in splits["train"].items() for _ in its]
    cols = [i for its in splits["train"].values() for i in its]
    train_mat = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    with open(out / "train_mat", "wb") as f:
        pickle.dump(train_mat, f)
    primary = np.array([p for p, _ in genre_pairs])
    for name, dim in (("text_feat", 16), ("image_feat", 8)):
        centroids = rng.normal(0, 1, (n_genres, dim))
        feats = centroids[primary] + rng.normal(0, 0.3, (n_items, dim))
        np.save(out / f"{name}.npy", feats.astype(np.float32))
    titles = items["title"].to_list()
    years = items["year"].to_list()
    genres = items["genres"].to_list()
    with open(out / "item_attribute.csv", "w", encoding="utf-8") as f:
        for i in range(n_items):
            if attribute_layout == "netflix":
                f.write(f"{i},{years[i]},{titles[i]}\n")
            else:
                f.write(f"{i},{titles[i]} ({years[i]}),{'|'.join(genres[i])}\n")
    (out / "truth.json").write_text(json.dumps(truth, indent=1))


def generate_synthetic(
    out_dir: str | Path, *, n_users: int = 60, n_items: int = 80, n_genres: int = 6,
    interactions_per_user: int = 15, seed: int = 0, layout: Literal["generic", "llmrec"] = "generic",
    posters: bool = True, attribute_layout: Literal["movielens", "netflix"] = "movielens",
    popularity: float = 0.0, val_items: int | None = None,
) -> Path:
    """Write a synthetic raw dataset into `out_dir` (created) and return it; see the module docstring.

    `posters` applies to the generic layout (needs pillow); `attribute_layout` to the LLMRec layout's
    item_attribute.csv. `popularity` in [0, 1): share of each user's interactions drawn from the catalogue-wide
    popularity law (0 = none). `val_items` (LLMRec layout): validation items per user instead of 10% (None).
    Deterministic for a given seed; the defaults reproduce the datasets written before these two options.
    """
    if n_genres < 2 or n_users < 1 or n_items < n_genres or interactions_per_user < 1:
        raise ValueError(f"need n_genres >= 2, n_users >= 1, n_items >= n_genres, interactions_per_user >= 1; got "
                         f"{n_genres=}, {n_users=}, {n_items=}, {interactions_per_user=}")
    if not 0.0 <= popularity < 1.0 or (val_items is not None and val_items < 1):
        raise ValueError(f"need 0 <= popularity < 1 and val_items None or >= 1; got {popularity=}, {val_items=}")
    if val_items is not None and layout != "llmrec":
        raise ValueError("val_items applies to layout='llmrec' (the generic layout is split by the prepare stage: "
                         "use split='leave_one_out' there for one validation item per user)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    interactions, items, users, truth, genre_pairs = _simulate(n_users, n_items, n_genres, interactions_per_user,
                                                                seed, popularity)
    truth["layout"] = layout
    if layout == "generic":
        _write_generic(out, interactions, items, users, truth, genre_pairs, n_genres, posters, seed)
    elif layout == "llmrec":
        _write_llmrec(out, interactions, items, truth, genre_pairs, n_users, n_items, n_genres, seed,
                      attribute_layout, val_items)
    else:
        raise ValueError(f"layout must be 'generic' or 'llmrec', got {layout!r}")
    return out


#: The popularity-plateau split (`generate_synthetic(out, **PLATEAU)`, then prepare with format "llmrec" and split
#: "given"): 3,000 users, 2,400 items in 80 genres (30 per genre, so that knowing a user's genres pays), 14
#: interactions per user of which 40% follow the global popularity law, one validation item per user. LightGCN's
#: validation Recall@20 (lr 1e-3) reaches the popularity level (0.20) by epoch 3, stays there to about epoch 22, then
#: climbs to 0.24 around epoch 70 (docs/results.md, "Early stopping").
PLATEAU: dict[str, Any] = {"n_users": 3000, "n_items": 2400, "n_genres": 80, "interactions_per_user": 14,
                           "popularity": 0.4, "val_items": 1, "layout": "llmrec", "posters": False}
