"""JSON schemas handed to the constrained decoder, one per job.

The pair job answers with candidate *positions* (an enum 0..K-1), never item ids: every user shares one schema
(one compiled grammar, cache hits), and our code maps positions back to item ids. Every free string has a
``maxLength`` and every list a ``maxItems``, so ``max_tokens`` can be derived from the schema and a weak model cannot
run away. Whitespace-free JSON is enforced at the engine level by the backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Age buckets of the MovieLens-1M user table, plus an explicit unknown.
AGE_BUCKETS: tuple[str, ...] = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+", "unknown")
GENDERS: tuple[str, ...] = ("female", "male", "other", "unknown")
UNKNOWN = "unknown"

#: Fields of a user profile, in the order the schema (and so the model's answer) lists them.
PROFILE_FIELDS: tuple[str, ...] = (
    "age", "gender", "liked_genres", "disliked_genres", "liked_directors", "country", "language",
)


def pair_schema(k: int) -> dict[str, Any]:
    """``{"liked": p, "disliked": q}`` with p, q positions in [0, k) of the candidate list and p != q.

    The rule p != q is part of the schema (one alternative per liked position, whose disliked enum leaves that
    position out), so the decoder cannot waste a request on it: a weak model tends to repeat its first pick."""
    def alternative(p: int) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "liked": {"type": "integer", "enum": [p]},
                "disliked": {"type": "integer", "enum": [q for q in range(k) if q != p]},
            },
            "required": ["liked", "disliked"],
            "additionalProperties": False,
        }

    return {"anyOf": [alternative(p) for p in range(k)]}


def _bounded_string(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars}


def attribute_schema(fields: Sequence[str], max_chars: int) -> dict[str, Any]:
    """One bounded string per requested attribute field (``"unknown"`` is an allowed, expected value)."""
    return {
        "type": "object",
        "properties": {f: _bounded_string(max_chars) for f in fields},
        "required": list(fields),
        "additionalProperties": False,
    }


def profile_schema(genres: Sequence[str], max_chars: int, max_items: int) -> dict[str, Any]:
    """User profile: age bucket and gender enums, genre lists over the dataset's vocabulary (free bounded strings
    when the dataset has none), a bounded list of directors, country and language."""
    genre_item = {"type": "string", "enum": list(genres)} if genres else _bounded_string(max_chars)
    genre_list = {"type": "array", "items": genre_item, "maxItems": max_items}
    return {
        "type": "object",
        "properties": {
            "age": {"type": "string", "enum": list(AGE_BUCKETS)},
            "gender": {"type": "string", "enum": list(GENDERS)},
            "liked_genres": genre_list,
            "disliked_genres": genre_list,
            "liked_directors": {"type": "array", "items": _bounded_string(max_chars), "maxItems": max_items},
            "country": _bounded_string(max_chars),
            "language": _bounded_string(max_chars),
        },
        "required": list(PROFILE_FIELDS),
        "additionalProperties": False,
    }
