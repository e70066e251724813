"""Write a free-text item table for MovieLens ml-latest-small: ``id,text`` with id = movieId and text =
"Title (year). Genres: a, b. Tags: x, y" from movies.csv and tags.csv (every movie of the release, rated or not;
the embed stage maps the ids onto the prepared dataset and reports those it does not know).

    python scripts/mlsmall_item_text.py [SOURCE] [OUT]
    (defaults: data/ml-latest-small, artifacts/mlsmall_item_text.csv)

Used by recipes/mlsmall_text_control.toml (real vs shuffled item text).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import polars as pl


def item_text_table(source: Path) -> pl.DataFrame:
    """(id String, text String) per movie of `source`/movies.csv, tags of tags.csv deduplicated, in first-use
    order."""
    movies = pl.read_csv(source / "movies.csv", schema_overrides={"movieId": pl.String})
    tags = pl.read_csv(source / "tags.csv", schema_overrides={"movieId": pl.String, "tag": pl.String})
    by_movie: dict[str, list[str]] = {}
    for movie, tag in tags.select("movieId", "tag").iter_rows():
        tag = (tag or "").strip().lower()
        if tag and tag not in by_movie.setdefault(movie, []):
            by_movie[movie].append(tag)
    rows = []
    for movie, title, genres in movies.select("movieId", "title", "genres").iter_rows():
        match = re.match(r"^(.*?)\s*\((\d{4})\)\s*$", title or "")
        parts = [f"{match.group(1)} ({match.group(2)})" if match else (title or "").strip()]
        if genres and genres != "(no genres listed)":
            parts.append("Genres: " + ", ".join(genres.split("|")))
        if by_movie.get(movie):
            parts.append("Tags: " + ", ".join(by_movie[movie]))
        rows.append((movie, ". ".join(p for p in parts if p)))
    return pl.DataFrame(rows, schema={"id": pl.String, "text": pl.String}, orient="row")


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else Path("data/ml-latest-small")
    out = Path(argv[1]) if len(argv) > 1 else Path("artifacts/mlsmall_item_text.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table = item_text_table(source)
    table.write_csv(out)
    print(f"{out}: {table.height} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
