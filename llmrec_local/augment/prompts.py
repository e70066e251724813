"""Versioned prompt templates of the three jobs.

Layout of every prompt, chosen for prefix caching: the system message and a fixed preamble (identical for every
request of a job) come first; the per-user or per-item part (history, candidates) comes last. The history lists
title, year and genres, most recent first when the dataset has timestamps, truncated to a character budget (about 4
characters per token) or to a token budget counted with the model's own tokenizer; candidates are labelled by their
position ``[0]..[K-1]``, the values the JSON schema allows.

Each job's template carries a version (`TEMPLATE_VERSIONS`) that enters every request's cache key. Changing any text
here without bumping the version fails `tests/augment/test_prompts.py` (golden files in `tests/augment/golden/`).

Differences from the original prompts (`docs/llmrec-original.md` §3): answers are JSON constrained by a schema
instead of ``pos::neg`` strings; candidates are labelled by position instead of internal item ids; the history is
ordered by time and bounded (in characters, or in tokens of the model's tokenizer with ``history_max_tokens``)
instead of the full item-id-ordered training row; the profile prompt allows explicit
"unknown" values instead of asking the model to guess everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import DataError
from .schemas import AGE_BUCKETS, GENDERS

TEMPLATE_VERSIONS: dict[str, str] = {"pairs": "pairs-v1", "attributes": "attributes-v1", "profiles": "profiles-v1"}

Messages = tuple[dict[str, str], ...]


@dataclass(frozen=True)
class ItemText:
    """What a prompt shows of one item."""

    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()

    def line(self) -> str:
        """``Title (1995) | Comedy, Drama``; the year is not repeated when the title already ends with it
        (MovieLens titles do)."""
        text = self.title
        if self.year is not None and not text.rstrip().endswith(f"({self.year})"):
            text = f"{text} ({self.year})"
        if self.genres:
            text = f"{text} | {', '.join(self.genres)}"
        return text


@dataclass(frozen=True)
class HistorySection:
    """The rendered history: the lines shown and how many items the user has in total."""

    lines: tuple[str, ...]
    total: int

    @property
    def shown(self) -> int:
        return len(self.lines)


def history_section(history: Sequence[ItemText], *, max_items: int, max_chars: int,
                    max_tokens: int | None = None,
                    count_tokens: Callable[[Sequence[str]], list[int]] | None = None) -> HistorySection:
    """Keep the first items of `history` (callers order it most recent first) while the rendered lines fit the
    budgets; at least one item is always shown. Raises DataError for an empty history (nothing to reason about).

    Without `max_tokens` the budget is `max_chars` characters of the lines plus their newlines (a longer first line
    is cut). With `max_tokens` (and `count_tokens`, the model tokenizer's ``texts -> token counts``) it replaces
    the character budget: the kept lines, joined by newlines as they appear in the prompt, take at most `max_tokens`
    tokens (a first line longer than that is shown whole). The per-line counts pick the cut; the joined block is
    then counted as a whole, because a tokenizer may merge across a line break, and lines are dropped until it fits.
    """
    if not history:
        raise DataError("cannot build a prompt from an empty history; users without training items are skipped")
    if max_tokens is not None:
        if count_tokens is None:
            raise ValueError("a token budget needs count_tokens (the model's tokenizer)")
        return _history_by_tokens(history[:max_items], max_tokens, count_tokens, len(history))
    lines: list[str] = []
    used = 0
    for item in history[:max_items]:
        line = f"- {item.line()}"
        if lines and used + len(line) + 1 > max_chars:
            break
        lines.append(line[: max_chars])
        used += len(line) + 1
    return HistorySection(tuple(lines), len(history))


def _history_by_tokens(items: Sequence[ItemText], max_tokens: int,
                       count_tokens: Callable[[Sequence[str]], list[int]], total: int) -> HistorySection:
    lines = [f"- {item.line()}" for item in items]
    counts = count_tokens(lines)
    newline = count_tokens(["\n"])[0]
    keep, used = 1, counts[0]
    while keep < len(lines) and used + newline + counts[keep] <= max_tokens:
        used += newline + counts[keep]
        keep += 1
    while keep > 1 and count_tokens(["\n".join(lines[:keep])])[0] > max_tokens:
        keep -= 1
    return HistorySection(tuple(lines[:keep]), total)


def _history_block(section: HistorySection, by_time: bool) -> str:
    order = "most recent first" if by_time else "in no particular order"
    head = f"User history ({order}; {section.shown} of {section.total} movies shown):"
    return head + "\n" + "\n".join(section.lines)


_ITEM_FORMAT = "Each movie is written as: title (year) | genres."

_PAIRS_SYSTEM = (
    "You are a movie recommender. You read the movies a user watched and a numbered list of candidate movies, "
    "then pick the candidate the user would like most and the candidate the user would like least. "
    'Answer only with JSON of the form {"liked": <number>, "disliked": <number>}, where each number is the one '
    "in square brackets before a candidate. The two numbers must differ. Judge by title, year and genre."
)


def pair_messages(history: HistorySection, candidates: Sequence[ItemText], *, by_time: bool) -> Messages:
    """Pair job (implicit feedback): history + candidates labelled ``[0]..[K-1]``."""
    cand = "\n".join(f"[{i}] {c.line()}" for i, c in enumerate(candidates))
    user = (
        f"{_ITEM_FORMAT}\n\n{_history_block(history, by_time)}\n\n"
        f"Candidates:\n{cand}\n\n"
        "Which candidate will the user like most, and which least?"
    )
    return ({"role": "system", "content": _PAIRS_SYSTEM}, {"role": "user", "content": user})


def _attributes_system(fields: Sequence[str]) -> str:
    names = ", ".join(fields)
    return (
        "You are a film encyclopedia. For the movie given, answer only with JSON holding these fields: "
        f"{names}. Give the main director's full name, the main production country and the original spoken "
        'language. Write "unknown" for a value you do not know; never repeat a field name, a placeholder or '
        "the title as a value."
    )


def attribute_messages(item: ItemText, fields: Sequence[str]) -> Messages:
    """Attribute job: one item per request; the field list sits in the shared system message."""
    user = f"{_ITEM_FORMAT}\n\nMovie: {item.line()}"
    return ({"role": "system", "content": _attributes_system(fields)}, {"role": "user", "content": user})


def _profiles_system(genres: Sequence[str], max_list_items: int) -> str:
    genre_rule = (f"chosen from: {', '.join(genres)}" if genres else "as short genre names")
    return (
        "You describe a movie viewer from the movies they watched. Answer only with JSON holding these fields: "
        f"age (one of: {', '.join(AGE_BUCKETS)}), gender (one of: {', '.join(GENDERS)}), "
        f"liked_genres and disliked_genres (at most {max_list_items} each, {genre_rule}; a genre is never both), "
        f"liked_directors (at most {max_list_items} full names), country and language (the viewer's likely "
        'country and language). Make an educated guess from the history; write "unknown" only where it gives '
        "no hint."
    )


def profile_messages(
    history: HistorySection, genres: Sequence[str], max_list_items: int, *, by_time: bool
) -> Messages:
    """Profile job: the user's history only; the genre vocabulary sits in the shared system message."""
    user = f"{_ITEM_FORMAT}\n\n{_history_block(history, by_time)}\n\nDescribe this user."
    return ({"role": "system", "content": _profiles_system(genres, max_list_items)}, {"role": "user", "content": user})
