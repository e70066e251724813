"""Country/language canonicalisation and placeholder detection."""

from __future__ import annotations

import pytest

from llmrec_local.augment.canonical import (
    canonical_country,
    canonical_field,
    canonical_language,
    canonical_name,
    is_placeholder,
)


@pytest.mark.parametrize("spelling", ["USA", "United States", "U.S.", "America", "u.s.a", " the US ",
                                      "United States of America", "'USA'"])
def test_us_spellings_share_one_form(spelling: str) -> None:
    assert canonical_country(spelling) == "United States"


def test_other_countries_lists_and_unlisted_names() -> None:
    assert canonical_country("UK") == canonical_country("Great Britain") == "United Kingdom"
    assert canonical_country("USA, UK") == "United States, United Kingdom"
    assert canonical_country("USA / U.S.") == "United States"
    assert canonical_country("peru") == "Peru"
    assert canonical_country("Côte d'Ivoire") == "Côte d'Ivoire"


def test_languages() -> None:
    assert canonical_language("en") == canonical_language("ENGLISH") == "English"
    assert canonical_language("Chinese") == "Mandarin"
    assert canonical_language("English and French") == "English, French"


@pytest.mark.parametrize("value", ["", "Unknown", "N/A", "director name", "<director>", "{country}", "none",
                                   "Director", "language"])
def test_placeholders_become_unknown(value: str) -> None:
    assert is_placeholder(value.strip("<>{}")) or canonical_name(value) == "unknown"
    assert canonical_field("director", value) == "unknown"
    assert canonical_field("country", value) == "unknown"


def test_title_echo_is_unknown_only_for_its_item() -> None:
    assert canonical_name("Baby, The (1973)", echoes=("Baby, The (1973)",)) == "unknown"
    assert canonical_name("Baby, The (1973)", echoes=("Other",)) == "Baby, The (1973)"
