"""LLM answer text -> typed record, or a failure with a reason.

Constrained decoding makes the JSON well-formed; these checks still run on every answer because an OpenAI-compatible
server may ignore the schema, a cached answer may come from another backend, and the schema cannot express the
domain rules (not a history item; a genre named both liked and disliked is kept as liked only). The original parser
raised on any deviation and silently skipped the user (`docs/llmrec-original.md` §3.1, B2); here every failure
is kept with its reason and the raw text, and retried a bounded number of times by the runner.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .canonical import canonical_country, canonical_field, canonical_language, canonical_name
from .schemas import AGE_BUCKETS, GENDERS, PROFILE_FIELDS, UNKNOWN


class Reason(StrEnum):
    """Why an answer was rejected (the ``reason`` column of ``failures.parquet``)."""

    BACKEND_ERROR = "backend_error"  # the backend returned an error instead of text
    TRUNCATED = "truncated"  # max_tokens reached before the JSON was complete
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    UNEXPECTED_FIELD = "unexpected_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "position_out_of_range"
    SAME_POSITION = "liked_equals_disliked"
    IN_HISTORY = "candidate_in_history"
    NOT_ALLOWED = "value_not_allowed"  # outside an enum (age bucket, gender, genre vocabulary)
    TOO_LONG = "value_too_long"
    TOO_MANY = "too_many_values"
    EMPTY_HISTORY = "empty_history"  # no request was made: the user has no training items
    NO_CANDIDATES = "no_candidates"  # no request was made: the user has fewer than two candidates
    NO_TITLE = "no_title"  # no request was made: the item has no title to ask about


@dataclass(frozen=True)
class ParseFailure:
    reason: Reason
    detail: str


@dataclass(frozen=True)
class PairAnswer:
    """A valid pair: candidate positions and the item indices they map to."""

    pos_position: int
    neg_position: int
    pos_item: int
    neg_item: int


def _load_object(text: str, finish_reason: str, fields: Sequence[str]) -> dict[str, Any] | ParseFailure:
    try:
        # strict=False: raw control characters inside strings (a known xgrammar quirk) are not worth a retry.
        obj = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        if finish_reason == "length":
            return ParseFailure(Reason.TRUNCATED, f"answer cut at max_tokens ({len(text)} chars): {exc.msg}")
        return ParseFailure(Reason.INVALID_JSON, f"{exc.msg} at char {exc.pos}")
    if not isinstance(obj, dict):
        return ParseFailure(Reason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in fields if f not in obj]
    if missing:
        return ParseFailure(Reason.MISSING_FIELD, f"missing {missing}")
    extra = sorted(set(obj) - set(fields))
    if extra:
        return ParseFailure(Reason.UNEXPECTED_FIELD, f"unexpected {extra}")
    return obj


def parse_pair(
    text: str, candidates: Sequence[int], history: Collection[int], finish_reason: str = "stop"
) -> PairAnswer | ParseFailure:
    """``{"liked": p, "disliked": q}`` -> items ``candidates[p]``, ``candidates[q]``.

    Checks: both are integers in [0, len(candidates)), p != q, and neither item is in the user's `history`.
    """
    obj = _load_object(text, finish_reason, ("liked", "disliked"))
    if isinstance(obj, ParseFailure):
        return obj
    positions = []
    for name in ("liked", "disliked"):
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, int):
            return ParseFailure(Reason.WRONG_TYPE, f"{name}={value!r} is not an integer position")
        if not 0 <= value < len(candidates):
            return ParseFailure(Reason.OUT_OF_RANGE, f"{name}={value} outside [0, {len(candidates)})")
        positions.append(value)
    pos, neg = positions
    if pos == neg:
        return ParseFailure(Reason.SAME_POSITION, f"liked and disliked are both position {pos}")
    for name, p in (("liked", pos), ("disliked", neg)):
        if candidates[p] in history:
            return ParseFailure(Reason.IN_HISTORY, f"{name} position {p} is item {candidates[p]}, a history item")
    return PairAnswer(pos, neg, int(candidates[pos]), int(candidates[neg]))


def _string(obj: dict[str, Any], name: str, max_chars: int) -> str | ParseFailure:
    value = obj[name]
    if not isinstance(value, str):
        return ParseFailure(Reason.WRONG_TYPE, f"{name}={value!r} is not a string")
    if len(value) > max_chars:
        return ParseFailure(Reason.TOO_LONG, f"{name} has {len(value)} chars > {max_chars}")
    return value


def parse_attributes(
    text: str, fields: Sequence[str], max_chars: int, *, title: str = "", finish_reason: str = "stop"
) -> dict[str, str] | ParseFailure:
    """Attribute answer -> ``{field: canonical value}``. Country and language get canonical spellings; template
    echoes, placeholders and the item's own title become ``"unknown"``. An all-unknown answer is valid: it is
    the honest answer for an obscure item."""
    obj = _load_object(text, finish_reason, fields)
    if isinstance(obj, ParseFailure):
        return obj
    out = {}
    for name in fields:
        value = _string(obj, name, max_chars)
        if isinstance(value, ParseFailure):
            return value
        out[name] = canonical_field(name, value, echoes=(title,))
    return out


def _string_list(
    obj: dict[str, Any], name: str, max_chars: int, max_items: int, allowed: Collection[str] | None
) -> list[str] | ParseFailure:
    value = obj[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ParseFailure(Reason.WRONG_TYPE, f"{name}={value!r} is not a list of strings")
    if len(value) > max_items:
        return ParseFailure(Reason.TOO_MANY, f"{name} has {len(value)} values > {max_items}")
    for v in value:
        if len(v) > max_chars:
            return ParseFailure(Reason.TOO_LONG, f"{name} value {v[:20]!r}... has {len(v)} chars > {max_chars}")
        if allowed is not None and v not in allowed:
            return ParseFailure(Reason.NOT_ALLOWED, f"{name} value {v!r} is not in the genre vocabulary")
    return list(dict.fromkeys(value))


def parse_profile(
    text: str, genres: Sequence[str], max_chars: int, max_items: int, *, finish_reason: str = "stop"
) -> dict[str, Any] | ParseFailure:
    """Profile answer -> dict with the `PROFILE_FIELDS` (age bucket, gender, genre lists from the vocabulary when
    the dataset has one, canonical directors/country/language) plus ``profile_text``."""
    obj = _load_object(text, finish_reason, PROFILE_FIELDS)
    if isinstance(obj, ParseFailure):
        return obj
    out: dict[str, Any] = {}
    for name, allowed in (("age", AGE_BUCKETS), ("gender", GENDERS)):
        value = obj[name]
        if not isinstance(value, str):
            return ParseFailure(Reason.WRONG_TYPE, f"{name}={value!r} is not a string")
        if value not in allowed:
            return ParseFailure(Reason.NOT_ALLOWED, f"{name}={value!r} is not one of {list(allowed)}")
        out[name] = value
    vocabulary = set(genres) if genres else None
    for name in ("liked_genres", "disliked_genres"):
        values = _string_list(obj, name, max_chars, max_items, vocabulary)
        if isinstance(values, ParseFailure):
            return values
        out[name] = values if vocabulary else [canonical_name(v) for v in values if canonical_name(v) != UNKNOWN]
    # A genre named in both lists is kept as liked only: the liked list is the primary signal of the profile, and
    # rejecting the whole answer for this would waste a request on a cosmetic conflict.
    out["disliked_genres"] = [g for g in out["disliked_genres"] if g not in set(out["liked_genres"])]
    directors = _string_list(obj, "liked_directors", max_chars, max_items, None)
    if isinstance(directors, ParseFailure):
        return directors
    out["liked_directors"] = list(dict.fromkeys(d for d in map(canonical_name, directors) if d != UNKNOWN))
    for name, canon in (("country", canonical_country), ("language", canonical_language)):
        value = _string(obj, name, max_chars)
        if isinstance(value, ParseFailure):
            return value
        out[name] = canon(value)
    out["profile_text"] = profile_text(out)
    return out


def profile_text(profile: dict[str, Any]) -> str:
    """Canonical one-line rendering of a profile for the text embedder: fixed field order, fixed wording, lists
    joined with ", ", empty lists as "unknown", so equal profiles embed identically."""
    def joined(values: Sequence[str]) -> str:
        return ", ".join(values) if values else UNKNOWN

    return (
        f"Age: {profile['age']}. Gender: {profile['gender']}. "
        f"Liked genres: {joined(profile['liked_genres'])}. Disliked genres: {joined(profile['disliked_genres'])}. "
        f"Liked directors: {joined(profile['liked_directors'])}. "
        f"Country: {profile['country']}. Language: {profile['language']}."
    )
