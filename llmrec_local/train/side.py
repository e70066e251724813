"""Optional side inputs of a training run: embedding artifacts (or arrays) and LLM pairs, resolved to arrays.

Each input may be an artifact path or an already-loaded numpy array (tests, notebooks). Paths are read lazily
(``load_embedding`` and polars only when a path is given), so training on plain arrays needs neither.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.augmentation import read_pairs
from ..artifacts.base import artifact_digest, is_complete
from ..errors import DataError

Source = Path | str | np.ndarray


@dataclass(frozen=True)
class SideInputs:
    """Side inputs for the LLMRec model (all optional; MF and LightGCN ignore them).

    item_text, item_image: embedding artifacts (entity item) or (I, D) arrays.
    item_attributes: field name -> embedding artifact or (I, D) array (one per generated attribute field).
    user_profiles: embedding artifact (entity user) or (U, D) array.
    pairs: augmentation folder holding ``records.parquet`` (user, pos_item, neg_item), the parquet file itself, or
        an (m, 3) int array.
    use_dataset_features: also read ``features/text_feat.npy`` / ``image_feat.npy`` from the dataset artifact
        (LLMRec's release layout) when the corresponding input above is not given.
    """

    item_text: Source | None = None
    item_image: Source | None = None
    item_attributes: Mapping[str, Source] = field(default_factory=dict)
    user_profiles: Source | None = None
    pairs: Source | None = None
    use_dataset_features: bool = True


@dataclass(frozen=True)
class SideArrays:
    item_text: np.ndarray | None
    item_image: np.ndarray | None
    item_attributes: dict[str, np.ndarray]
    user_profiles: np.ndarray | None
    pairs: np.ndarray | None
    description: dict[str, Any]  # what was used, for the manifest and the config hash


def _describe(src: Source, arr: np.ndarray) -> dict[str, Any]:
    if isinstance(src, np.ndarray):
        return {"array_sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16],
                "shape": list(arr.shape)}
    path = Path(src)
    desc: dict[str, Any] = {"path": str(path.resolve()), "shape": list(arr.shape)}
    manifest = path / "manifest.json" if path.is_dir() else path.parent / "manifest.json"
    if manifest.is_file():
        desc["config_hash"] = json.loads(manifest.read_text()).get("config_hash")
    return desc


def _embedding(src: Source, n: int, entity: str, what: str) -> np.ndarray:
    if isinstance(src, np.ndarray):
        arr = np.asarray(src, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise DataError(f"{what}: expected an ({n}, dim) array, got shape {arr.shape}")
        return arr
    from ..artifacts.embeddings import load_embedding

    return load_embedding(src, n, entity=entity).vectors


def _pairs(src: Source) -> np.ndarray:
    if isinstance(src, np.ndarray):
        arr = np.asarray(src, dtype=np.int64)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise DataError(f"LLM pairs: expected an (m, 3) array of (user, pos, neg), got shape {arr.shape}")
        return arr
    return read_pairs(src)


def side_digests(side: SideInputs | None) -> dict[str, str]:
    """Content digests of the side inputs that are artifacts (``{"side:item_text": digest, ...}``), for the run's
    provenance: a rebuilt embedding or pairs artifact makes a finished run stale. In-memory arrays are covered by
    the run's config hash already (their sha256 is in its side description)."""
    if side is None:
        return {}
    sources: dict[str, Source | None] = {"item_text": side.item_text, "item_image": side.item_image,
                                         "user_profiles": side.user_profiles, "pairs": side.pairs,
                                         **{f"attr:{k}": v for k, v in side.item_attributes.items()}}
    out = {}
    for name, src in sorted(sources.items()):
        if src is None or isinstance(src, np.ndarray):
            continue
        folder = Path(src) if Path(src).is_dir() else Path(src).parent
        if is_complete(folder):
            out[f"side:{name}"] = artifact_digest(folder)
    return out


def resolve_side(side: SideInputs | None, dataset_path: Path | None, n_users: int, n_items: int) -> SideArrays:
    """Load every given side input as arrays aligned to the dataset's contiguous indices."""
    side = side or SideInputs()
    desc: dict[str, Any] = {}
    text = image = None
    if side.item_text is not None:
        text = _embedding(side.item_text, n_items, "item", "item_text")
        desc["item_text"] = _describe(side.item_text, text)
    if side.item_image is not None:
        image = _embedding(side.item_image, n_items, "item", "item_image")
        desc["item_image"] = _describe(side.item_image, image)
    if side.use_dataset_features and dataset_path is not None:
        for name, fname in (("item_text", "text_feat.npy"), ("item_image", "image_feat.npy")):
            file = Path(dataset_path) / "features" / fname
            if (text if name == "item_text" else image) is None and file.is_file():
                arr = np.load(file).astype(np.float32)
                if arr.shape[0] != n_items:
                    raise DataError(f"{file} has {arr.shape[0]} rows but the dataset has {n_items} items")
                desc[name] = _describe(file, arr)
                if name == "item_text":
                    text = arr
                else:
                    image = arr
    attrs = {}
    for name, src in sorted(side.item_attributes.items()):
        attrs[name] = _embedding(src, n_items, "item", f"item_attributes[{name}]")
        desc[f"attr:{name}"] = _describe(src, attrs[name])
    prof = None
    if side.user_profiles is not None:
        prof = _embedding(side.user_profiles, n_users, "user", "user_profiles")
        desc["user_profiles"] = _describe(side.user_profiles, prof)
    pairs = None
    if side.pairs is not None:
        pairs = _pairs(side.pairs)
        desc["pairs"] = _describe(side.pairs, pairs)
    return SideArrays(text, image, attrs, prof, pairs, desc)
