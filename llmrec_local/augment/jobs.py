"""The three LLM augmentation jobs: implicit-feedback pairs, item attributes, user profiles.

Each class implements the runner's `Job` protocol: it plans one task per user or item from the dataset (and, for
pairs, the candidates), renders the prompt (`prompts`), names the schema (`schemas`) and checks answers (`parse`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from ..errors import ConfigError, DataError
from ..llm.base import GenResult
from ..llm.tokens import PromptCounter
from .config import AugmentConfig
from .parse import ParseFailure, Reason, parse_attributes, parse_pair, parse_profile
from .prompts import (
    TEMPLATE_VERSIONS,
    HistorySection,
    ItemText,
    Messages,
    attribute_messages,
    history_section,
    pair_messages,
    profile_messages,
)
from .runner import Skipped, Task
from .schemas import attribute_schema, pair_schema, profile_schema


class DatasetLike(Protocol):
    """The part of `llmrec_local.data.Dataset` the jobs read."""

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    def items(self) -> pl.DataFrame: ...

    def train_history(self) -> pl.DataFrame: ...

    def genre_vocabulary(self) -> list[str]: ...


def dataset_fingerprint(dataset: DatasetLike) -> dict[str, Any]:
    """What identifies the dataset in a job's config hash: its artifact config hash and sizes."""
    return {"config_hash": dataset.manifest.get("config_hash"), "n_users": dataset.n_users,
            "n_items": dataset.n_items}


def item_texts(dataset: DatasetLike) -> list[ItemText | None]:
    """`ItemText` per item index (None where the item has no title). DataError when no item has a title: every
    prompt identifies movies by title, so such a dataset cannot be augmented by an LLM."""
    items = dataset.items()
    if "title" not in items.columns or items["title"].null_count() == items.height:
        raise DataError(
            f"dataset has no item titles (items.parquet column 'title' is missing or all null, {items.height} "
            "items); the LLM jobs show movies by title. Prepare the dataset from a source with titles (e.g. "
            "MovieLens movies.csv, LLMRec's item_attribute.csv), or bring augmentations made elsewhere with "
            "`python -m llmrec_local.augment import`"
        )
    out: list[ItemText | None] = [None] * dataset.n_items
    years = items["year"].to_list() if "year" in items.columns else [None] * items.height
    genres = items["genres"].to_list() if "genres" in items.columns else [[]] * items.height
    for idx, title, year, gen in zip(items["item"].to_list(), items["title"].to_list(), years, genres):
        if title is not None and title.strip():
            out[idx] = ItemText(title.strip(), int(year) if year is not None else None, tuple(gen or ()))
    return out


@dataclass(frozen=True)
class UserHistory:
    """A user's training items, most recent first when `by_time`."""

    items: tuple[int, ...]
    by_time: bool


def user_histories(dataset: DatasetLike) -> dict[int, UserHistory]:
    """Training history per user: most recent first (ties and missing timestamps by item index) when the dataset
    has timestamps, else by item index (the original's order)."""
    hist = dataset.train_history()
    by_time = "timestamp" in hist.columns and hist["timestamp"].null_count() < hist.height
    if by_time:
        hist = hist.sort(["user", "timestamp", "item"], descending=[False, True, False], nulls_last=True)
    else:
        hist = hist.sort(["user", "item"])
    grouped = hist.group_by("user", maintain_order=True).agg(pl.col("item"))
    return {u: UserHistory(tuple(items), by_time)
            for u, items in zip(grouped["user"].to_list(), grouped["item"].to_list())}


class LineCounter:
    """Token counts of history lines with the model's tokenizer, each distinct line counted once (an item's line is
    the same in every user's history). Without a tokenizer it only refuses a token budget, naming the fix."""

    def __init__(self, tokenizer: PromptCounter | None, config: AugmentConfig) -> None:
        self.tokenizer, self.config = tokenizer, config
        self._known: dict[str, int] = {}

    def __call__(self, texts: Sequence[str]) -> list[int]:
        if self.tokenizer is None:
            raise ConfigError(f"augment.history_max_tokens={self.config.history_max_tokens} counts tokens with the "
                              f"model's tokenizer, but no tokenizer of {self.config.model!r} was given; place the "
                              "model folder where the registry finds it (--models-dir), or use history_max_chars")
        # An item's line repeats in many histories, a joined history block (lines + newlines, the final check of the
        # budget) belongs to one user: blocks are counted without being kept, so the memo stays catalogue-sized.
        distinct = list(dict.fromkeys(texts))
        blocks = [t for t in distinct if "\n" in t and t != "\n"]
        new = [t for t in distinct if t not in self._known and ("\n" not in t or t == "\n")]
        self._known.update(zip(new, self.tokenizer.count(new)))
        once = dict(zip(blocks, self.tokenizer.count(blocks))) if blocks else {}
        return [once[t] if t in once else self._known[t] for t in texts]


def _history(texts: Sequence[ItemText | None], items: Sequence[int], config: AugmentConfig,
             counter: LineCounter) -> HistorySection:
    shown = [texts[i] for i in items if texts[i] is not None]
    return history_section(shown, max_items=config.history_max_items, max_chars=config.history_max_chars,
                           max_tokens=config.history_max_tokens, count_tokens=counter)


def history_settings(config: AugmentConfig) -> dict[str, Any]:
    """The history budget in a job's settings (its identity): the token budget replaces the character budget when
    set; without it the settings are those from before the token budget existed (same config hashes)."""
    if config.history_max_tokens is None:
        return {"history_max_items": config.history_max_items, "history_max_chars": config.history_max_chars}
    return {"history_max_items": config.history_max_items, "history_max_tokens": config.history_max_tokens}


def _value_counts(values: Sequence[str], top: int = 10) -> str:
    counts = Counter(values).most_common(top)
    return ", ".join(f"{v} ({n})" for v, n in counts) if counts else "(none)"


def _users_with_history(job: str, n_users: int, histories: dict[int, UserHistory], texts: Sequence[ItemText | None],
                        skipped: list[Skipped]) -> Iterator[tuple[int, str, UserHistory]]:
    """(user, request key, history) of every user with at least one titled training item; the others are appended
    to `skipped` (no request is made for them: the model would have nothing to go on)."""
    for user in range(n_users):
        key = f"{job}:user:{user}"
        hist = histories.get(user)
        if hist is None or not any(texts[i] is not None for i in hist.items):
            skipped.append(Skipped(user, key, Reason.EMPTY_HISTORY, "no titled training items"))
            continue
        yield user, key, hist


@dataclass(frozen=True)
class _PairContext:
    history: HistorySection
    by_time: bool
    candidates: tuple[int, ...]
    seen: frozenset[int]


class PairsJob:
    """Implicit feedback: per user, the LLM picks a liked and a disliked item among its K candidates.

    records.parquet: user, pos_item, neg_item (Int64 item indices), pos_position, neg_position (Int32 positions in
    the candidate list), attempt, cache_key: one BPR triple (user, pos_item, neg_item) per user. `k` is the
    candidates artifact's K (its manifest): at most k titled candidates are shown per user."""

    name = "pairs"
    artifact = "pairs"
    entity = "user"
    template_version = TEMPLATE_VERSIONS["pairs"]

    def __init__(self, dataset: DatasetLike, candidates: pl.DataFrame, config: AugmentConfig,
                 candidates_fingerprint: str, k: int, tokenizer: PromptCounter | None = None) -> None:
        self.dataset, self.config, self.k = dataset, config, k
        self.counter = LineCounter(tokenizer, config)
        self.texts = item_texts(dataset)
        self.histories = user_histories(dataset)
        self.candidates_fingerprint = candidates_fingerprint
        ranked = candidates.sort(["user", "rank"]).group_by("user", maintain_order=True).agg(pl.col("item"))
        self.candidates = {u: tuple(items) for u, items in zip(ranked["user"].to_list(), ranked["item"].to_list())}

    def settings(self) -> dict[str, Any]:
        return {"k": self.k, **history_settings(self.config),
                "dataset": dataset_fingerprint(self.dataset), "candidates": self.candidates_fingerprint}

    def plan(self) -> tuple[list[Task], list[Skipped]]:
        tasks: list[Task] = []
        skipped: list[Skipped] = []
        for user, key, hist in _users_with_history("pairs", self.dataset.n_users, self.histories, self.texts,
                                                   skipped):
            cands = tuple(i for i in self.candidates.get(user, ()) if self.texts[i] is not None)[: self.k]
            if len(cands) < 2:
                skipped.append(Skipped(user, key, Reason.NO_CANDIDATES,
                                       f"{len(cands)} titled candidates; a pair needs 2"))
                continue
            ctx = _PairContext(_history(self.texts, hist.items, self.config, self.counter), hist.by_time, cands,
                               frozenset(hist.items))
            tasks.append(Task(user, key, ctx))
        return tasks, skipped

    def messages(self, task: Task) -> Messages:
        ctx: _PairContext = task.context
        return pair_messages(ctx.history, [self.texts[i] for i in ctx.candidates], by_time=ctx.by_time)

    def schema(self, task: Task) -> dict[str, Any]:
        return pair_schema(len(task.context.candidates))

    def parse(self, task: Task, result: GenResult) -> dict[str, Any] | ParseFailure:
        ctx: _PairContext = task.context
        ans = parse_pair(result.text, ctx.candidates, ctx.seen, result.finish_reason)
        if isinstance(ans, ParseFailure):
            return ans
        return {"pos_item": ans.pos_item, "neg_item": ans.neg_item, "pos_position": ans.pos_position,
                "neg_position": ans.neg_position}

    def frame(self, records: list[dict[str, Any]]) -> pl.DataFrame:
        return pl.DataFrame(records, schema={
            "user": pl.Int64, "pos_item": pl.Int64, "neg_item": pl.Int64, "pos_position": pl.Int32,
            "neg_position": pl.Int32, "attempt": pl.Int32, "cache_key": pl.String})

    def describe(self, records: pl.DataFrame) -> list[str]:
        if not records.height:
            return ["(no records)"]
        return [
            f"- liked position (0 = base model's top candidate): {_value_counts(records['pos_position'].cast(pl.String).to_list())}",
            f"- disliked position: {_value_counts(records['neg_position'].cast(pl.String).to_list())}",
            f"- distinct liked items: {records['pos_item'].n_unique()}, distinct disliked items: "
            f"{records['neg_item'].n_unique()}",
        ]


class AttributesJob:
    """Item attributes: per item, the configured fields (director, country, language by default).

    records.parquet: item (Int64) + one String column per field ("unknown" when the model does not know),
    attempt, cache_key."""

    name = "attributes"
    artifact = "item_attributes"
    entity = "item"
    template_version = TEMPLATE_VERSIONS["attributes"]

    def __init__(self, dataset: DatasetLike, config: AugmentConfig) -> None:
        self.dataset, self.config = dataset, config
        self.fields = tuple(config.attribute_fields)
        self.texts = item_texts(dataset)

    def settings(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "max_value_chars": self.config.max_value_chars,
                "dataset": dataset_fingerprint(self.dataset)}

    def plan(self) -> tuple[list[Task], list[Skipped]]:
        tasks, skipped = [], []
        for item, text in enumerate(self.texts):
            key = f"attributes:item:{item}"
            if text is None:
                skipped.append(Skipped(item, key, Reason.NO_TITLE, "item has no title"))
            else:
                tasks.append(Task(item, key, text))
        return tasks, skipped

    def messages(self, task: Task) -> Messages:
        return attribute_messages(task.context, self.fields)

    def schema(self, task: Task) -> dict[str, Any]:
        return attribute_schema(self.fields, self.config.max_value_chars)

    def parse(self, task: Task, result: GenResult) -> dict[str, Any] | ParseFailure:
        return parse_attributes(result.text, self.fields, self.config.max_value_chars, title=task.context.title,
                                finish_reason=result.finish_reason)

    def frame(self, records: list[dict[str, Any]]) -> pl.DataFrame:
        schema = {"item": pl.Int64, **{f: pl.String for f in self.fields}, "attempt": pl.Int32,
                  "cache_key": pl.String}
        return pl.DataFrame(records, schema=schema)

    def describe(self, records: pl.DataFrame) -> list[str]:
        lines = []
        for f in self.fields:
            col = records[f] if records.height else pl.Series([], dtype=pl.String)
            unknown = int((col == "unknown").sum()) if records.height else 0
            lines.append(f"- {f}: {col.n_unique()} distinct values, {unknown} unknown; top: "
                         f"{_value_counts(col.to_list())}")
        return lines


class ProfilesJob:
    """User profiles: per user, age bucket, gender, liked/disliked genres, liked directors, country, language.

    records.parquet: user (Int64), age, gender (String), liked_genres, disliked_genres, liked_directors
    (List[String]), country, language, profile_text (String: the canonical rendering to embed), attempt,
    cache_key."""

    name = "profiles"
    artifact = "user_profiles"
    entity = "user"
    template_version = TEMPLATE_VERSIONS["profiles"]

    def __init__(self, dataset: DatasetLike, config: AugmentConfig, tokenizer: PromptCounter | None = None) -> None:
        self.dataset, self.config = dataset, config
        self.counter = LineCounter(tokenizer, config)
        self.texts = item_texts(dataset)
        self.histories = user_histories(dataset)
        self.genres = tuple(dataset.genre_vocabulary())

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {**history_settings(c), "max_value_chars": c.max_value_chars, "max_list_items": c.max_list_items,
                "genres": list(self.genres), "dataset": dataset_fingerprint(self.dataset)}

    def plan(self) -> tuple[list[Task], list[Skipped]]:
        tasks: list[Task] = []
        skipped: list[Skipped] = []
        for user, key, hist in _users_with_history("profiles", self.dataset.n_users, self.histories, self.texts,
                                                   skipped):
            tasks.append(Task(user, key, (_history(self.texts, hist.items, self.config, self.counter), hist.by_time)))
        return tasks, skipped

    def messages(self, task: Task) -> Messages:
        history, by_time = task.context
        return profile_messages(history, self.genres, self.config.max_list_items, by_time=by_time)

    def schema(self, task: Task) -> dict[str, Any]:
        return profile_schema(self.genres, self.config.max_value_chars, self.config.max_list_items)

    def parse(self, task: Task, result: GenResult) -> dict[str, Any] | ParseFailure:
        return parse_profile(result.text, self.genres, self.config.max_value_chars, self.config.max_list_items,
                             finish_reason=result.finish_reason)

    def frame(self, records: list[dict[str, Any]]) -> pl.DataFrame:
        lst = pl.List(pl.String)
        return pl.DataFrame(records, schema={
            "user": pl.Int64, "age": pl.String, "gender": pl.String, "liked_genres": lst, "disliked_genres": lst,
            "liked_directors": lst, "country": pl.String, "language": pl.String, "profile_text": pl.String,
            "attempt": pl.Int32, "cache_key": pl.String})

    def describe(self, records: pl.DataFrame) -> list[str]:
        if not records.height:
            return ["(no records)"]
        flat = lambda col: [v for row in records[col].to_list() for v in row]  # noqa: E731
        return [f"- {c}: {_value_counts(records[c].to_list())}" for c in ("age", "gender", "country", "language")] + [
            f"- {c} (all mentions): {_value_counts(flat(c))}" for c in ("liked_genres", "disliked_genres",
                                                                        "liked_directors")]
