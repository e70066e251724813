"""MovieLens loaders on tiny fixture files written in the exact formats of each release."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.data.loaders import detect_format
from llmrec_local.data.loaders.movielens import ML100K_GENRES, detect_movielens, load_movielens
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in ML100K_GENRES)


def write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
                                   "196\t302\t5\t881250950\n22\t242\t4\t878887120\n")
    items = [
        f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{_flags('Comedy')}",
        f"302|L.A. Confidential (1997)|01-Jan-1997||http://us.imdb.com/M/title-exact?L%2EA%2E+Confidential+(1997)|"
        f"{_flags('Crime', 'Film-Noir', 'Mystery', 'Thriller')}",
        "377|Heavyweights (1994)|01-Jan-1994||http://us.imdb.com/M/title-exact?Heavyweights%20(1994)|"
        + _flags("Children's", "Comedy"),
        f"1682|Scream of Stone (Schrei aus Stein) (1991)|08-Mar-1996||http://us.imdb.com/x|{_flags('Drama')}",
        f"267|unknown||||{_flags('unknown')}",
        f"1300|'Til There Was You (1997)|01-Jan-1997||http://x|{_flags('Drama')}",
        f"999|Misérables, Les (1995)|01-Jan-1995||http://x|{_flags('Drama')}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(ML100K_GENRES)) + "\n")
    (folder / "u.user").write_text("22|25|M|writer|40206\n186|39|F|executive|00000\n196|49|M|writer|55105\n")
    return folder


def write_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
                                        "2::3068::4::978299000\n")
    (folder / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::"
        "Animation|Children's|Musical\n3068::Verdict, The (1982)::Drama\n73::Misérables, Les (1995)::Drama|Musical\n"
        .encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def write_ml10m(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n2::122::3.5::868245777\n"
                                        "2::292::4::868244562\n")
    (folder / "movies.dat").write_text("122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::"
                                       "Action|Crime|Thriller\n292::Outbreak (1995)::Action|Drama|Sci-Fi|Thriller\n")
    (folder / "tags.dat").write_text("15::122::dark comedy::1215184630\n20::122::Dark Comedy::1215184631\n"
                                     "20::122::eddie murphy::1215184632\n15::292::virus::1215184633\n")
    return folder


def write_ml_latest(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,5.0,964981247\n"
                                        "2,1,3.5,1445714835\n2,131724,5.0,1445714851\n3,11,0.5,1306463578\n")
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
        '11,"American President, The (1995)",Comedy|Drama|Romance\n'
        '131724,The Jinx: The Life and Deaths of Robert Durst (2015),(no genres listed)\n'
        '40697,Babylon 5,Sci-Fi\n')
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n3,1,fun,1445714996\n"
                                     '4,1,Pixar,1445715000\n2,11,"politics, romance",1445715010\n')
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n11,0112346,9087\n131724,4299972,"
                                      "\n40697,0105946,\n")
    return folder


def test_ml100k(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    assert detect_format(folder) == "movielens" and detect_movielens(folder) == "ml-100k"
    raw = load_movielens(folder)
    assert len(raw.interactions) == 5 and raw.interactions["rating"].to_list()[0] == 3.0
    items = raw.items.sort("item_id")
    row = {r["item_id"]: r for r in items.to_dicts()}
    assert row["302"]["title"] == "L.A. Confidential" and row["302"]["year"] == 1997
    assert row["302"]["genres"] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
    assert row["267"]["title"] == "unknown" and row["267"]["year"] is None and row["267"]["genres"] == []
    assert row["1682"]["title"] == "Scream of Stone (Schrei aus Stein)" and row["1682"]["year"] == 1991
    assert row["999"]["title"] == "Misérables, Les"  # latin-1 decoded
    assert row["377"]["genres"] == ["Children's", "Comedy"]
    users = raw.users.sort("user_id")
    assert users.to_dicts()[0] == {"user_id": "186", "age": 39, "gender": "female", "occupation": "executive",
                                   "zip_code": "00000"}


def test_ml1m_demographics_and_latin1(tmp_path: Path) -> None:
    raw = load_movielens(write_ml1m(tmp_path / "ml-1m"))
    assert raw.variant == "ml-1m"
    users = {r["user_id"]: r for r in raw.users.to_dicts()}
    assert users["1"] == {"user_id": "1", "gender": "female", "age": 1, "occupation": "K-12 student",
                          "zip_code": "48067", "age_group": "Under 18"}
    assert users["2"]["occupation"] == "self-employed" and users["2"]["age_group"] == "56+"
    titles = dict(zip(raw.items["item_id"], raw.items["title"]))
    assert titles["73"] == "Misérables, Les" and titles["3068"] == "Verdict, The"
    genres = dict(zip(raw.items["item_id"], raw.items["genres"]))
    assert genres["661"].to_list() == ["Animation", "Children's", "Musical"]


def test_ml10m_half_stars_and_tags(tmp_path: Path) -> None:
    raw = load_movielens(write_ml10m(tmp_path / "ml-10m"))
    assert raw.variant == "ml-10m" and raw.users is None
    assert sorted(raw.interactions["rating"].to_list()) == [3.5, 4.0, 4.5, 5.0]
    tags = dict(zip(raw.items["item_id"], raw.items["tags"]))
    assert tags["122"] == "dark comedy, eddie murphy"  # case-insensitive duplicates merged, most frequent first
    assert tags["185"] is None


def test_ml_latest_csv(tmp_path: Path) -> None:
    folder = write_ml_latest(tmp_path / "ml-latest-small")
    raw = load_movielens(folder)
    items = {r["item_id"]: r for r in raw.items.to_dicts()}
    assert items["11"]["title"] == "American President, The" and items["11"]["year"] == 1995
    assert items["131724"]["genres"] == [] and items["131724"]["year"] == 2015
    assert items["131724"]["title"] == "The Jinx: The Life and Deaths of Robert Durst"
    assert items["40697"]["year"] is None and items["40697"]["title"] == "Babylon 5"
    assert items["1"]["tags"] == "pixar, fun" and items["11"]["tags"] == "politics, romance"
    assert items["1"]["imdb_id"] == "0114709"
    out = prepare(PrepareConfig(source=folder, min_rating=None, test_ratio=0.4, val_ratio=0.0), tmp_path / "ds")
    ds = Dataset.load(out)
    # Items without interactions (Babylon 5) are not indexed by default; every rated one is.
    assert ds.n_items == 3 and ds.n_users == 3
    assert ds.manifest["counts"]["raw"] == {"users": 3, "items": 3, "interactions": 5, "catalog_items": 4}
    catalog = prepare(PrepareConfig(source=folder, min_rating=None, item_catalog="all"), tmp_path / "all")
    assert Dataset.load(catalog).n_items == 4


@pytest.mark.parametrize("writer", [write_ml100k, write_ml1m, write_ml10m, write_ml_latest])
def test_every_variant_prepares(writer, tmp_path: Path) -> None:  # noqa: ANN001
    folder = writer(tmp_path / "raw")
    ds = Dataset.load(prepare(PrepareConfig(source=folder, min_rating=None, split="leave_one_out"), tmp_path / "o"))
    assert ds.n_users >= 2 and ds.items()["title"].null_count() == 0
    assert ds.split().filter(pl.col("split") == "test")["user"].n_unique() == ds.split()["user"].n_unique() - \
        ds.split().group_by("user").len().filter(pl.col("len") == 1).height


def test_real_ml_latest_small_counts() -> None:
    """The shipped ml-latest-small: 610 users, 9,724 rated of 9,742 movies, 100,836 ratings (GroupLens README)."""
    folder = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-latest-small"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    raw = load_movielens(folder)
    assert len(raw.interactions) == 100_836
    assert raw.interactions["user_id"].n_unique() == 610
    assert raw.interactions["item_id"].n_unique() == 9_724 and len(raw.items) == 9_742
