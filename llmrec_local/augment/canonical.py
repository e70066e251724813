"""Canonical spellings for countries and languages, and detection of placeholder answers.

The released LLMRec attributes hold 1,166 distinct country strings and 326 language strings for one dataset
("USA", "United States", "U.S.", "America" ...), echoed templates ("director", "country") and titles in the director
slot (`docs/llmrec-original.md` §3.3, D4). Each spelling maps to one canonical form here, and every placeholder
becomes the explicit value ``"unknown"``, so embeddings of the attributes are not dominated by surface variance.
"""

from __future__ import annotations

import re
import unicodedata

from .schemas import UNKNOWN

# Canonical form -> spellings (compared after `_fold`: lower case, no accents, punctuation removed).
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "United States": ("usa", "us", "u s", "u s a", "united states", "united states of america", "america",
                      "the united states", "the us", "the usa", "states"),
    "United Kingdom": ("uk", "u k", "united kingdom", "great britain", "britain", "england", "scotland", "wales",
                       "gb", "the uk", "the united kingdom"),
    "France": ("france", "french republic"),
    "Germany": ("germany", "west germany", "east germany", "deutschland", "federal republic of germany"),
    "Italy": ("italy", "italia"),
    "Spain": ("spain", "espana"),
    "Japan": ("japan", "nippon"),
    "China": ("china", "prc", "peoples republic of china", "mainland china"),
    "Hong Kong": ("hong kong", "hongkong", "hk"),
    "Taiwan": ("taiwan", "republic of china"),
    "South Korea": ("south korea", "korea", "republic of korea", "korea south", "rok"),
    "India": ("india", "bharat"),
    "Canada": ("canada",),
    "Australia": ("australia",),
    "New Zealand": ("new zealand", "nz"),
    "Mexico": ("mexico",),
    "Brazil": ("brazil", "brasil"),
    "Argentina": ("argentina",),
    "Russia": ("russia", "russian federation", "soviet union", "ussr", "u s s r"),
    "Sweden": ("sweden",),
    "Denmark": ("denmark",),
    "Norway": ("norway",),
    "Finland": ("finland",),
    "Netherlands": ("netherlands", "the netherlands", "holland"),
    "Belgium": ("belgium",),
    "Ireland": ("ireland", "republic of ireland", "eire"),
    "Poland": ("poland",),
    "Czech Republic": ("czech republic", "czechia", "czechoslovakia"),
    "Austria": ("austria",),
    "Switzerland": ("switzerland",),
    "Iran": ("iran", "persia"),
    "Israel": ("israel",),
    "Turkey": ("turkey", "turkiye"),
    "South Africa": ("south africa",),
    "Greece": ("greece",),
    "Hungary": ("hungary",),
    "Portugal": ("portugal",),
}

_LANGUAGES: dict[str, tuple[str, ...]] = {
    "English": ("english", "en", "eng", "english language", "american english", "british english"),
    "French": ("french", "fr", "francais"),
    "German": ("german", "de", "deutsch"),
    "Spanish": ("spanish", "es", "espanol", "castilian"),
    "Italian": ("italian", "it", "italiano"),
    "Japanese": ("japanese", "ja", "jp"),
    "Mandarin": ("mandarin", "mandarin chinese", "chinese", "zh", "chinese mandarin", "putonghua"),
    "Cantonese": ("cantonese", "cantonese chinese", "chinese cantonese"),
    "Korean": ("korean", "ko"),
    "Hindi": ("hindi", "hi"),
    "Russian": ("russian", "ru"),
    "Portuguese": ("portuguese", "pt"),
    "Swedish": ("swedish", "sv"),
    "Danish": ("danish", "da"),
    "Norwegian": ("norwegian", "nb", "bokmal"),
    "Finnish": ("finnish", "fi"),
    "Dutch": ("dutch", "nl", "flemish"),
    "Polish": ("polish", "pl"),
    "Czech": ("czech", "cs"),
    "Persian": ("persian", "farsi", "fa"),
    "Hebrew": ("hebrew", "he"),
    "Turkish": ("turkish", "tr"),
    "Greek": ("greek", "el"),
    "Hungarian": ("hungarian", "hu"),
    "Arabic": ("arabic", "ar"),
    "Silent": ("silent", "none silent", "no dialogue"),
}

#: Values that mean "no information": template echoes, refusals, filler.
_PLACEHOLDERS = frozenset({
    "", "unknown", "unkown", "n a", "na", "none", "null", "nil", "not available", "not known", "unspecified",
    "not specified", "various", "varies", "multiple", "tbd", "tba", "xxx", "x", "idk", "no idea", "not sure",
    "director", "director name", "directors", "name of director", "directors name", "country", "country name",
    "language", "language name", "age", "gender", "genre", "genres", "title", "value", "string", "answer",
    "not applicable", "cannot determine", "can not determine", "unable to determine", "no information",
})


def _fold(text: str) -> str:
    """Lower case, accents stripped, punctuation to spaces, whitespace collapsed: the key spellings compare on."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


def _invert(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_fold(spelling): canon for canon, spellings in table.items() for spelling in (*spellings, canon)}


_COUNTRY_INDEX = _invert(_COUNTRIES)
_LANGUAGE_INDEX = _invert(_LANGUAGES)


_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def clean_text(value: str) -> str:
    """Collapse whitespace and strip quotes, and brackets that wrap the whole value ("<director>", "[USA]"), which
    a model may add; brackets inside a value ("Baby, The (1973)") are kept."""
    value = " ".join(str(value).split()).strip(" \"'`")
    while len(value) >= 2 and _PAIRS.get(value[0]) == value[-1]:
        value = value[1:-1].strip(" \"'`")
    return value


def is_placeholder(value: str | None, *, echoes: tuple[str, ...] = ()) -> bool:
    """True for empty answers, template echoes ("director name", "<country>") and the given item-specific echoes
    (e.g. the item's title answered as its director)."""
    if value is None:
        return True
    folded = _fold(value)
    if folded in _PLACEHOLDERS:
        return True
    return any(folded == _fold(e) for e in echoes if e)


def _canonical(value: str, index: dict[str, str]) -> str:
    value = clean_text(value)
    if is_placeholder(value):
        return UNKNOWN
    folded = _fold(value)
    if folded in index:
        return index[folded]
    # "USA, UK" or "English / French": canonicalise each part, keep the order, drop duplicates.
    parts = [p for p in re.split(r"\s*(?:,|/|;|&|\band\b|\|)\s*", value) if p.strip()]
    if len(parts) > 1:
        canon = [_canonical(p, index) for p in parts]
        canon = [c for c in dict.fromkeys(canon) if c != UNKNOWN]
        return ", ".join(canon) if canon else UNKNOWN
    # An unlisted name keeps its content, in title case so that "peru" and "Peru" agree.
    return value if any(c.isupper() for c in value) else value.title()


def canonical_country(value: str | None) -> str:
    """One spelling per country: ``canonical_country("U.S.") == canonical_country("America") == "United States"``;
    placeholders become ``"unknown"``; a list "USA, UK" becomes "United States, United Kingdom"."""
    return UNKNOWN if value is None else _canonical(value, _COUNTRY_INDEX)


def canonical_language(value: str | None) -> str:
    """One spelling per language (``"en"``, ``"english"`` -> ``"English"``); placeholders become ``"unknown"``."""
    return UNKNOWN if value is None else _canonical(value, _LANGUAGE_INDEX)


def canonical_name(value: str | None, *, echoes: tuple[str, ...] = ()) -> str:
    """A person's name or other free value: whitespace cleaned; placeholders and echoes become ``"unknown"``."""
    if value is None:
        return UNKNOWN
    value = clean_text(value)
    return UNKNOWN if is_placeholder(value, echoes=echoes) else value


def canonical_field(field: str, value: str | None, *, echoes: tuple[str, ...] = ()) -> str:
    """Canonicalise the value of attribute `field` (country and language have spelling tables)."""
    if field == "country":
        return canonical_country(value)
    if field == "language":
        return canonical_language(value)
    return canonical_name(value, echoes=echoes)
