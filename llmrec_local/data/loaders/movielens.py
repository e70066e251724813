"""MovieLens loaders: ml-100k, ml-1m, ml-10m and the CSV releases (ml-20m, ml-25m, ml-32m, ml-latest, -small).

Formats (GroupLens README files):
- ml-100k: ``u.data`` (user, item, rating, timestamp; tab-separated), ``u.item`` (latin-1, ``|``-separated: id,
  title, release date, video release date, IMDb URL, 19 genre flags), ``u.genre`` (name|flag index), ``u.user``
  (id|age|gender|occupation|zip).
- ml-1m: ``ratings.dat`` (UserID::MovieID::Rating::Timestamp), ``movies.dat`` (latin-1, MovieID::Title::A|B),
  ``users.dat`` (UserID::Gender::Age code::Occupation code::Zip-code).
- ml-10m: ``ratings.dat``, ``movies.dat`` and ``tags.dat`` (UserID::MovieID::Tag::Timestamp); no users file.
- CSV releases: ``ratings.csv`` (userId,movieId,rating,timestamp), ``movies.csv`` (movieId,title,genres; quoted
  titles), ``tags.csv`` (userId,movieId,tag,timestamp), ``links.csv`` (movieId,imdbId,tmdbId); no users file.

Titles "Name (1995)" become title "Name" + year 1995; genres "A|B" a list ("(no genres listed)" -> empty); tags are
aggregated per movie into a ``tags`` text column (distinct tags, most frequent first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ...artifacts.dataset import (
    GENRES,
    ITEM_ID,
    RATING,
    TIMESTAMP,
    TITLE,
    USER_ID,
    YEAR,
)
from ...errors import DataError
from ..checks import cast_column, check_unique, require_columns
from .base import (
    RawData,
    canonical_interactions,
    complete_items,
    read_separated,
    require_file,
    split_genres,
    split_title_year,
)
from .generic import read_table

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)
_GENDERS = {"M": "male", "F": "female"}
_FIX = "check that the file is the unmodified GroupLens release file"


def detect_movielens(folder: Path) -> str | None:
    """The MovieLens variant stored in `folder` (e.g. "ml-100k", "ml-1m", "ml-10m", "ml-latest-small"), or None."""
    if (folder / "u.data").is_file():
        return "ml-100k"
    if (folder / "ratings.dat").is_file():
        return "ml-1m" if (folder / "users.dat").is_file() else "ml-10m"
    if (folder / "ratings.csv").is_file() and (folder / "movies.csv").is_file():
        return folder.name if folder.name.startswith("ml-") else "ml-latest"
    return None


def _typed_ratings(df: pl.DataFrame, file: Path) -> pl.DataFrame:
    df = cast_column(df, RATING, pl.Float64(), file=file, fix=f"ratings must be numbers; {_FIX}")
    df = cast_column(df, TIMESTAMP, pl.Int64(), file=file, fix=f"timestamps must be unix seconds; {_FIX}")
    return canonical_interactions(df)


def _aggregate_tags(tags: pl.DataFrame) -> pl.DataFrame:
    """item_id -> "tag a, tag b, ..." of distinct (case-insensitive) tags, most frequent first."""
    tags = tags.with_columns(pl.col("tag").cast(pl.String).str.strip_chars()).filter(pl.col("tag").str.len_chars() > 0)
    counted = (
        tags.with_columns(pl.col("tag").str.to_lowercase().alias("_key"))
        .group_by(ITEM_ID, "_key").agg(pl.col("tag").first(), pl.len().alias("_n"))
        .sort([ITEM_ID, "_n", "_key"], descending=[False, True, False])
    )
    return counted.group_by(ITEM_ID, maintain_order=True).agg(pl.col("tag").str.join(", ").alias("tags"))


def _items_common(items: pl.DataFrame, file: Path) -> pl.DataFrame:
    items = items.with_columns(pl.col(ITEM_ID).cast(pl.String).str.strip_chars())
    check_unique(items, ITEM_ID, file=file, fix="each movie must appear once; remove the duplicate row")
    return split_title_year(items)


def _load_100k(folder: Path, encoding: str) -> RawData:
    fix = "download ml-100k again (https://grouplens.org/datasets/movielens/100k/)"
    latin1: dict[str, Any] = {"encoding": encoding, "latin1_release": True}  # GroupLens ships ml-100k in latin-1
    data = require_file(folder / "u.data", "ratings: user, item, rating, timestamp", fix)
    item_file = require_file(folder / "u.item", "movies: id|title|release date|...|19 genre flags", fix)
    ratings = read_separated(data, "\t", [USER_ID, ITEM_ID, RATING, TIMESTAMP],
                             schema={USER_ID: pl.String, ITEM_ID: pl.String, RATING: pl.String,
                                     TIMESTAMP: pl.String}, **latin1)
    genre_names = list(ML100K_GENRES)
    files = {"interactions": data, "items": item_file}
    if (genre_file := folder / "u.genre").is_file():
        table = read_separated(genre_file, "|", ["name", "index"], **latin1).drop_nulls()
        genre_names = [name for name, _ in sorted(zip(table["name"], table["index"].cast(pl.Int64)),
                                                  key=lambda t: t[1])]
        files["genres"] = genre_file
    flag_cols = [f"_g{k}" for k in range(len(genre_names))]
    columns = [ITEM_ID, TITLE, "release_date", "video_release_date", "imdb_url", *flag_cols]
    raw_items = read_separated(item_file, "|", columns, schema={c: pl.String for c in columns}, **latin1)
    genres = pl.concat_list([
        pl.when(pl.col(flag) == "1").then(pl.lit(name)) for flag, name in zip(flag_cols, genre_names)
        if name != "unknown"  # a missing-data marker in ml-100k, not a genre
    ]).list.drop_nulls()
    items = raw_items.select(
        ITEM_ID, TITLE, genres.alias(GENRES), pl.col("imdb_url"),
        pl.col("release_date").str.extract(r"(\d{4})\s*$").cast(pl.Int32).alias(YEAR),
    )
    items = complete_items(_items_common(items, item_file))
    users = None
    if (user_file := folder / "u.user").is_file():
        cols = [USER_ID, "age", "gender", "occupation", "zip_code"]
        users = read_separated(user_file, "|", cols, schema={c: pl.String for c in cols}, **latin1)
        users = cast_column(users, "age", pl.Int32(), file=user_file, fix=_FIX)
        users = users.with_columns(pl.col("gender").replace(_GENDERS))
        check_unique(users, USER_ID, file=user_file, fix="each user must appear once")
        files["users"] = user_file
    return RawData(_typed_ratings(ratings, data), items, users, files, format="movielens", variant="ml-100k",
                   user_column="user id (u.data column 1)", item_column="item id (u.data column 2)")


def _load_dat(folder: Path, variant: str, encoding: str) -> RawData:
    fix = f"download {variant} again from https://grouplens.org/datasets/movielens/"
    latin1: dict[str, Any] = {"encoding": encoding, "latin1_release": True}  # the .dat release files are latin-1
    data = require_file(folder / "ratings.dat", "UserID::MovieID::Rating::Timestamp", fix)
    movie_file = require_file(folder / "movies.dat", "MovieID::Title::Genres", fix)
    ratings = read_separated(data, "::", [USER_ID, ITEM_ID, RATING, TIMESTAMP],
                             schema={USER_ID: pl.String, ITEM_ID: pl.String, RATING: pl.String,
                                     TIMESTAMP: pl.String}, **latin1)
    movies = read_separated(movie_file, "::", [ITEM_ID, TITLE, GENRES],
                            schema={ITEM_ID: pl.String, TITLE: pl.String, GENRES: pl.String}, **latin1)
    items = _items_common(movies.with_columns(split_genres(pl.col(GENRES))), movie_file)
    files = {"interactions": data, "items": movie_file}
    if (tag_file := folder / "tags.dat").is_file():
        tags = read_separated(tag_file, "::", [USER_ID, ITEM_ID, "tag", TIMESTAMP],
                              schema={USER_ID: pl.String, ITEM_ID: pl.String, "tag": pl.String,
                                      TIMESTAMP: pl.String}, **latin1)
        items = items.join(_aggregate_tags(tags), on=ITEM_ID, how="left")
        files["tags"] = tag_file
    users = None
    if (user_file := folder / "users.dat").is_file():
        cols = [USER_ID, "gender", "age", "occupation", "zip_code"]
        users = read_separated(user_file, "::", cols, schema={c: pl.String for c in cols}, **latin1)
        users = cast_column(users, "age", pl.Int32(), file=user_file, fix=_FIX)
        users = cast_column(users, "occupation", pl.Int64(), file=user_file, fix=_FIX)
        users = users.with_columns(
            pl.col("gender").replace(_GENDERS),
            pl.col("age").replace_strict(ML1M_AGES, default=None, return_dtype=pl.String).alias("age_group"),
            pl.col("occupation").replace_strict(dict(enumerate(ML1M_OCCUPATIONS)), default=None,
                                                return_dtype=pl.String),
        )
        check_unique(users, USER_ID, file=user_file, fix="each user must appear once")
        files["users"] = user_file
    return RawData(_typed_ratings(ratings, data), complete_items(items), users, files, format="movielens",
                   variant=variant, user_column="UserID", item_column="MovieID")


def _load_csv(folder: Path, variant: str, encoding: str) -> RawData:
    ratings_file, movies_file = folder / "ratings.csv", folder / "movies.csv"
    ratings = read_table(ratings_file, encoding)
    require_columns(ratings, ["userId", "movieId", "rating", "timestamp"], file=ratings_file, fix=_FIX)
    ratings = ratings.rename({"userId": USER_ID, "movieId": ITEM_ID})
    movies = read_table(movies_file, encoding)
    require_columns(movies, ["movieId", "title", "genres"], file=movies_file, fix=_FIX)
    items = movies.select(pl.col("movieId").alias(ITEM_ID), TITLE, split_genres(pl.col("genres")).alias(GENRES))
    items = _items_common(items, movies_file)
    files = {"interactions": ratings_file, "items": movies_file}
    if (tag_file := folder / "tags.csv").is_file():
        tags = read_table(tag_file, encoding)
        require_columns(tags, ["movieId", "tag"], file=tag_file, fix=_FIX)
        items = items.join(_aggregate_tags(tags.rename({"movieId": ITEM_ID})), on=ITEM_ID, how="left")
        files["tags"] = tag_file
    if (link_file := folder / "links.csv").is_file():
        links = read_table(link_file, encoding)
        require_columns(links, ["movieId", "imdbId", "tmdbId"], file=link_file, fix=_FIX)
        links = links.select(pl.col("movieId").alias(ITEM_ID), pl.col("imdbId").alias("imdb_id"),
                             pl.col("tmdbId").alias("tmdb_id"))
        items = items.join(links.unique(ITEM_ID, keep="first"), on=ITEM_ID, how="left")
        files["links"] = link_file
    raw = RawData(_typed_ratings(ratings, ratings_file), complete_items(items), None, files, format="movielens",
                  variant=variant, user_column="userId", item_column="movieId")
    raw.notes.append(f"{movies_file.name}: {len(items):,} movies, {raw.interactions[ITEM_ID].n_unique():,} of them "
                     f"rated")
    return raw


def load_movielens(folder: Path, encoding: str = "auto") -> RawData:
    """Load the MovieLens release in `folder` (variant detected from its files).

    `encoding` follows :func:`~.base.decode_bytes`: with "auto", the ml-100k/ml-1m/ml-10m files (latin-1 in
    GroupLens' releases) fall back to latin-1 and the CSV releases (UTF-8) must be UTF-8.
    """
    variant = detect_movielens(folder)
    if variant is None:
        raise DataError(
            f"{folder}: no MovieLens files found (looked for u.data, ratings.dat, ratings.csv + movies.csv); pass "
            f"the folder that holds them (e.g. ml-10m's ml-10M100K/)"
        )
    if variant == "ml-100k":
        return _load_100k(folder, encoding)
    if variant in ("ml-1m", "ml-10m"):
        return _load_dat(folder, variant, encoding)
    return _load_csv(folder, variant, encoding)
