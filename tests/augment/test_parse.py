"""Answer parsing and domain checks: position -> item mapping and every failure reason."""

from __future__ import annotations

import json

import pytest

from llmrec_local.augment.parse import (
    PairAnswer,
    ParseFailure,
    Reason,
    parse_attributes,
    parse_pair,
    parse_profile,
    profile_text,
)

CANDS = [40, 41, 42, 43]
HISTORY = {7, 42}


def test_positions_map_to_candidate_items() -> None:
    ans = parse_pair('{"liked":3,"disliked":0}', CANDS, HISTORY)
    assert ans == PairAnswer(pos_position=3, neg_position=0, pos_item=43, neg_item=40)


@pytest.mark.parametrize("text,finish,reason", [
    ('{"liked":1,', "length", Reason.TRUNCATED),
    ('liked 1 disliked 2', "stop", Reason.INVALID_JSON),
    ('[1, 2]', "stop", Reason.NOT_OBJECT),
    ('{"liked":1}', "stop", Reason.MISSING_FIELD),
    ('{"liked":1,"disliked":0,"why":"x"}', "stop", Reason.UNEXPECTED_FIELD),
    ('{"liked":"1","disliked":0}', "stop", Reason.WRONG_TYPE),
    ('{"liked":true,"disliked":0}', "stop", Reason.WRONG_TYPE),
    ('{"liked":4,"disliked":0}', "stop", Reason.OUT_OF_RANGE),
    ('{"liked":-1,"disliked":0}', "stop", Reason.OUT_OF_RANGE),
    ('{"liked":1,"disliked":1}', "stop", Reason.SAME_POSITION),
    ('{"liked":2,"disliked":0}', "stop", Reason.IN_HISTORY),
    ('{"liked":0,"disliked":2}', "stop", Reason.IN_HISTORY),
])
def test_pair_failure_reasons(text: str, finish: str, reason: Reason) -> None:
    result = parse_pair(text, CANDS, HISTORY, finish)
    assert isinstance(result, ParseFailure) and result.reason == reason and result.detail


def test_attributes_canonicalised_and_echoes_become_unknown() -> None:
    text = json.dumps({"director": "Ridley Scott", "country": "U.S.", "language": "en"})
    assert parse_attributes(text, ("director", "country", "language"), 48, title="Alien") == {
        "director": "Ridley Scott", "country": "United States", "language": "English"}
    echo = json.dumps({"director": "director name", "country": "country", "language": "Unknown"})
    assert parse_attributes(echo, ("director", "country", "language"), 48) == {
        "director": "unknown", "country": "unknown", "language": "unknown"}
    title_echo = json.dumps({"director": "Breathless (1960)", "country": "France", "language": "fr"})
    assert parse_attributes(title_echo, ("director", "country", "language"), 48,
                            title="Breathless (1960)")["director"] == "unknown"


@pytest.mark.parametrize("obj,reason", [
    ({"director": 3, "country": "x", "language": "y"}, Reason.WRONG_TYPE),
    ({"director": "x" * 49, "country": "x", "language": "y"}, Reason.TOO_LONG),
    ({"director": "x", "country": "x"}, Reason.MISSING_FIELD),
])
def test_attribute_failure_reasons(obj: dict, reason: Reason) -> None:
    result = parse_attributes(json.dumps(obj), ("director", "country", "language"), 48)
    assert isinstance(result, ParseFailure) and result.reason == reason


PROFILE = {"age": "25-34", "gender": "male", "liked_genres": ["Comedy", "Drama"], "disliked_genres": ["Horror"],
           "liked_directors": ["Ron Underwood", "director name"], "country": "America", "language": "ENGLISH"}
GENRES = ["Comedy", "Drama", "Horror"]


def test_profile_parsed_canonicalised_and_rendered() -> None:
    out = parse_profile(json.dumps(PROFILE), GENRES, 48, 5)
    assert out["country"] == "United States" and out["language"] == "English"
    assert out["liked_directors"] == ["Ron Underwood"]  # the template echo is dropped
    assert out["profile_text"] == (
        "Age: 25-34. Gender: male. Liked genres: Comedy, Drama. Disliked genres: Horror. "
        "Liked directors: Ron Underwood. Country: United States. Language: English.")
    assert profile_text({**out, "liked_directors": []}).count("unknown") == 1


@pytest.mark.parametrize("change,reason", [
    ({"age": "33"}, Reason.NOT_ALLOWED),
    ({"gender": "Male"}, Reason.NOT_ALLOWED),
    ({"age": 33}, Reason.WRONG_TYPE),
    ({"liked_genres": ["Western"]}, Reason.NOT_ALLOWED),
    ({"liked_genres": "Comedy"}, Reason.WRONG_TYPE),
    ({"liked_genres": ["Comedy"] * 6}, Reason.TOO_MANY),
    ({"liked_directors": ["x" * 60]}, Reason.TOO_LONG),
    ({"country": None}, Reason.WRONG_TYPE),
])
def test_profile_failure_reasons(change: dict, reason: Reason) -> None:
    result = parse_profile(json.dumps({**PROFILE, **change}), GENRES, 48, 5)
    assert isinstance(result, ParseFailure) and result.reason == reason


def test_genre_both_liked_and_disliked_is_kept_as_liked() -> None:
    out = parse_profile(json.dumps({**PROFILE, "disliked_genres": ["Comedy", "Horror"]}), GENRES, 48, 5)
    assert out["liked_genres"] == ["Comedy", "Drama"] and out["disliked_genres"] == ["Horror"]


def test_profile_without_genre_vocabulary_accepts_free_genres() -> None:
    out = parse_profile(json.dumps({**PROFILE, "liked_genres": ["film noir", "unknown"]}), [], 48, 5)
    assert out["liked_genres"] == ["film noir"]  # kept as given, placeholders dropped


def test_control_characters_inside_strings_are_tolerated() -> None:
    text = '{"director":"Jean\x01Luc","country":"France","language":"French"}'
    assert parse_attributes(text, ("director", "country", "language"), 48)["country"] == "France"
