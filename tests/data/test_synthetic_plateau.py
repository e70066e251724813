"""The synthetic generator's popularity component and fixed validation count (the popularity-plateau split), and
the datasets it wrote before these options, unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from llmrec_local.data.synthetic import PLATEAU, generate_synthetic


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(("layout", "expected"), [("generic", "cdf15f5e1d9426ea"), ("llmrec", "5043b1b8a1700ab5")])
def test_existing_outputs_are_unchanged(tmp_path: Path, layout: str, expected: str) -> None:
    """Pinned digests of every file, computed before the popularity options existed (the defaults must not draw
    a single extra random number)."""
    assert _digest(generate_synthetic(tmp_path, layout=layout, posters=False, seed=3)) == expected


def _counts(folder: Path, n_items: int) -> np.ndarray:
    counts = np.zeros(n_items)
    for name in ("train", "val", "test"):
        for items in json.loads((folder / f"{name}.json").read_text()).values():
            counts[items] += 1
    return counts


def test_popularity_component_concentrates_interactions(tmp_path: Path) -> None:
    """With 40% of the draws from one catalogue-wide law, the 20 most popular items take a far larger share of the
    positives than without it (genre draws alone spread over the genres' own popularity orders)."""
    kwargs = dict(n_users=300, n_items=400, n_genres=20, interactions_per_user=14, layout="llmrec", posters=False)
    plain = _counts(generate_synthetic(tmp_path / "plain", **kwargs), 400)
    popular = _counts(generate_synthetic(tmp_path / "pop", popularity=0.4, **kwargs), 400)
    top = lambda c: np.sort(c)[::-1][:20].sum() / c.sum()  # noqa: E731
    assert top(popular) > 1.5 * top(plain)  # 0.28 against 0.16 for this seed


def test_one_validation_item_per_user(tmp_path: Path) -> None:
    out = generate_synthetic(tmp_path, n_users=50, n_items=120, n_genres=6, interactions_per_user=10,
                             popularity=0.5, val_items=1, layout="llmrec", posters=False)
    val = json.loads((out / "val.json").read_text())
    train = json.loads((out / "train.json").read_text())
    assert all(len(items) == 1 for items in val.values())
    assert all(not set(val[u]) & set(train[u]) for u in val)


def test_plateau_preset_and_bad_options(tmp_path: Path) -> None:
    assert PLATEAU["val_items"] == 1 and PLATEAU["layout"] == "llmrec" and PLATEAU["popularity"] > 0
    with pytest.raises(ValueError, match="popularity"):
        generate_synthetic(tmp_path, popularity=1.0)
    with pytest.raises(ValueError, match="leave_one_out"):
        generate_synthetic(tmp_path, val_items=1, layout="generic")
