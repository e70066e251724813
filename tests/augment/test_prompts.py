"""Prompt templates against golden files, history ordering and truncation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmrec_local.augment.prompts import (
    TEMPLATE_VERSIONS,
    ItemText,
    attribute_messages,
    history_section,
    pair_messages,
    profile_messages,
)
from llmrec_local.errors import DataError

GOLDEN = Path(__file__).parent / "golden"

HISTORY = [ItemText("Heat", 1995, ("Action", "Crime")), ItemText("Toy Story (1995)", 1995, ("Animation",)),
           ItemText("Amélie", None, ())]
CANDIDATES = [ItemText("Alien", 1979, ("Horror", "Sci-Fi")), ItemText("Clueless", 1995, ("Comedy",)),
              ItemText("Fargo", 1996, ("Crime", "Drama"))]


def render(job: str) -> str:
    """The fixed examples each golden file holds (every branch of the template): every message, role by role."""
    section = history_section(HISTORY, max_items=10, max_chars=1000)
    if job == "pairs":
        messages = (*pair_messages(section, CANDIDATES, by_time=True),
                    *pair_messages(section, CANDIDATES[:2], by_time=False))
    elif job == "attributes":
        messages = (*attribute_messages(CANDIDATES[0], ("director", "country", "language")),
                    *attribute_messages(HISTORY[2], ("director", "writer")))
    else:
        messages = (*profile_messages(section, ["Action", "Comedy", "Drama"], 3, by_time=False),
                    *profile_messages(section, [], 5, by_time=True))
    return "".join(f"### {m['role']}\n{m['content']}\n" for m in messages)


@pytest.mark.parametrize("job", sorted(TEMPLATE_VERSIONS))
def test_template_matches_golden_file_of_its_version(job: str) -> None:
    golden = GOLDEN / f"{TEMPLATE_VERSIONS[job]}.txt"
    text = render(job)
    if not golden.exists():
        if os.environ.get("LLMREC_UPDATE_GOLDEN") == "1":  # a new version: write its golden file once
            golden.write_text(text, encoding="utf-8")
        pytest.fail(f"no golden file {golden.name} for template {TEMPLATE_VERSIONS[job]}; after bumping a "
                    "version run this test once with LLMREC_UPDATE_GOLDEN=1 and review the new file")
    assert text == golden.read_text(encoding="utf-8"), (
        f"the {job} template changed but its version is still {TEMPLATE_VERSIONS[job]}: bump TEMPLATE_VERSIONS"
        f"[{job!r}] (cached answers of the old template must not be reused) and add its golden file")


def test_golden_files_exist_for_every_version_and_no_strays() -> None:
    names = {p.stem for p in GOLDEN.glob("*.txt")}
    assert set(TEMPLATE_VERSIONS.values()) <= names


def test_shared_prefix_comes_first() -> None:
    """Two users' pair prompts share the system message and the preamble, so prefix caching applies."""
    a = pair_messages(history_section(HISTORY, max_items=10, max_chars=1000), CANDIDATES, by_time=True)
    b = pair_messages(history_section(HISTORY[1:], max_items=10, max_chars=1000), CANDIDATES[::-1], by_time=True)
    assert a[0] == b[0]
    assert a[1]["content"].split("\n")[0] == b[1]["content"].split("\n")[0]


def test_item_line_does_not_repeat_year() -> None:
    assert ItemText("Toy Story (1995)", 1995, ("Animation",)).line() == "Toy Story (1995) | Animation"
    assert ItemText("Heat", 1995, ()).line() == "Heat (1995)"
    assert ItemText("Amélie").line() == "Amélie"


def test_history_truncated_to_item_and_char_budget() -> None:
    items = [ItemText(f"Movie number {i}", 2000 + i % 20, ("Drama",)) for i in range(100)]
    by_items = history_section(items, max_items=7, max_chars=100_000)
    assert by_items.shown == 7 and by_items.total == 100
    assert by_items.lines[0] == "- Movie number 0 (2000) | Drama"  # the first (most recent) items are kept
    by_chars = history_section(items, max_items=100, max_chars=200)
    assert sum(len(line) + 1 for line in by_chars.lines) <= 200
    assert 1 <= by_chars.shown < 10
    one = history_section([ItemText("x" * 500)], max_items=5, max_chars=120)
    assert one.shown == 1 and len(one.lines[0]) <= 120  # one oversized item is cut, never dropped


def test_history_header_states_order_and_counts() -> None:
    section = history_section(HISTORY, max_items=2, max_chars=1000)
    text = pair_messages(section, CANDIDATES, by_time=True)[1]["content"]
    assert "most recent first; 2 of 3 movies shown" in text
    assert "[0] Alien (1979) | Horror, Sci-Fi" in text and "[2] Fargo (1996)" in text


def test_empty_history_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="empty history"):
        history_section([], max_items=5, max_chars=1000)
