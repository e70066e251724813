"""Optional side inputs of a training run: embedding artifacts (or arrays) and LLM pairs, resolved to arrays.

Each input may be an artifact path or an already-loaded numpy array (tests, notebooks). Paths are read lazily
(``load_embedding`` and polars only when a path is given), so training on plain arrays needs neither.

Controls: ``SideInputs.shuffle`` names inputs to permute across entities before training, with a seeded
derangement (`llmrec_local.seeding.derangement`) of the entities that have an input: every such entity gets
another one's row (its text, image, attributes, profile; for pairs, another user's pairs), none keeps its own.
Training "real vs shuffled" then tells whether an input helps by its content rather than by its mere presence.
The permutation (seed, entities, digest) is in the side description, hence in the run's manifest and config hash.
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
from ..hashing import stable_hash
from ..seeding import derangement, derive_seed

Source = Path | str | np.ndarray
#: the side inputs `SideInputs.shuffle` may name
SHUFFLABLE = ("item_text", "item_image", "item_attributes", "user_profiles", "pairs", "dataset_features")


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
    shuffle: input name (one of `SHUFFLABLE`) -> seed of its derangement across entities (the control; see the
        module docstring). Item attributes move together: an item gets all fields of one other item;
        ``dataset_features`` shuffles whichever of item text and image came from the dataset's feature files.
    """

    item_text: Source | None = None
    item_image: Source | None = None
    item_attributes: Mapping[str, Source] = field(default_factory=dict)
    user_profiles: Source | None = None
    pairs: Source | None = None
    use_dataset_features: bool = True
    shuffle: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.shuffle) - set(SHUFFLABLE))
        if unknown:
            raise ValueError(f"shuffle: {unknown[0]!r} is not one of {list(SHUFFLABLE)}")


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


def _embedding(src: Source, n: int, entity: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n, dim) float32, present (n,) bool): an array's present rows are its non-zero ones."""
    if isinstance(src, np.ndarray):
        arr = np.asarray(src, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise DataError(f"{what}: expected an ({n}, dim) array, got shape {arr.shape}")
        return arr, np.any(arr != 0, axis=1)
    from ..artifacts.embeddings import load_embedding

    table = load_embedding(src, n, entity=entity)
    return table.vectors, table.mask


def _permutation(present: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Source row of every row (int64 (n,)): rows with an input take another such row's (a derangement among
    them), rows without keep theirs; and its description for the manifest."""
    rows = np.flatnonzero(present)
    source = np.arange(len(present), dtype=np.int64)
    perm = derangement(len(rows), seed)
    source[rows] = rows[perm]
    desc = {"seed": seed, "method": "derangement", "entities": int(len(rows)),
            "fixed_points": int(np.sum(source[rows] == rows)), "permutation": stable_hash(source.tolist())}
    return source, desc


def _shuffle_pairs(pairs: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Pairs (m, 3) with their users deranged among the users that have pairs: each such user gets the pairs
    of another one."""
    users = np.unique(pairs[:, 0])
    perm = derangement(len(users), seed)
    out = pairs.copy()
    out[:, 0] = users[perm][np.searchsorted(users, pairs[:, 0])]
    desc = {"seed": seed, "method": "derangement", "entities": int(len(users)),
            "fixed_points": int(np.sum(users[perm] == users)), "permutation": stable_hash(users[perm].tolist())}
    return out, desc


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
    """Load every given side input as arrays aligned to the dataset's contiguous indices, then apply the
    shuffle controls (`SideInputs.shuffle`)."""
    side = side or SideInputs()
    desc: dict[str, Any] = {}
    present: dict[str, np.ndarray] = {}
    from_features: list[str] = []
    text = image = None
    if side.item_text is not None:
        text, present["item_text"] = _embedding(side.item_text, n_items, "item", "item_text")
        desc["item_text"] = _describe(side.item_text, text)
    if side.item_image is not None:
        image, present["item_image"] = _embedding(side.item_image, n_items, "item", "item_image")
        desc["item_image"] = _describe(side.item_image, image)
    if side.use_dataset_features and dataset_path is not None:
        for name, fname in (("item_text", "text_feat.npy"), ("item_image", "image_feat.npy")):
            file = Path(dataset_path) / "features" / fname
            if (text if name == "item_text" else image) is None and file.is_file():
                arr = np.load(file).astype(np.float32)
                if arr.shape[0] != n_items:
                    raise DataError(f"{file} has {arr.shape[0]} rows but the dataset has {n_items} items")
                desc[name] = _describe(file, arr)
                present[name] = np.any(arr != 0, axis=1)
                from_features.append(name)
                if name == "item_text":
                    text = arr
                else:
                    image = arr
    attrs = {}
    for name, src in sorted(side.item_attributes.items()):
        attrs[name], attr_present = _embedding(src, n_items, "item", f"item_attributes[{name}]")
        present["item_attributes"] = present.get("item_attributes", np.zeros(n_items, bool)) | attr_present
        desc[f"attr:{name}"] = _describe(src, attrs[name])
    prof = None
    if side.user_profiles is not None:
        prof, present["user_profiles"] = _embedding(side.user_profiles, n_users, "user", "user_profiles")
        desc["user_profiles"] = _describe(side.user_profiles, prof)
    pairs = None
    if side.pairs is not None:
        pairs = _pairs(side.pairs)
        desc["pairs"] = _describe(side.pairs, pairs)
    shuffle = dict(side.shuffle)
    if "dataset_features" in shuffle:
        if not from_features:
            raise DataError("shuffle names dataset_features but no feature file of the dataset was used (the run "
                            "takes its item text and image elsewhere, or the dataset has none)")
        seed = shuffle.pop("dataset_features")
        shuffle.update({name: derive_seed(seed, name) for name in from_features})
    for name, seed in sorted(shuffle.items()):
        if name == "pairs":
            if pairs is None:
                raise DataError("shuffle names pairs but the run has no LLM pairs; drop it from shuffle")
            pairs, desc["shuffle:pairs"] = _shuffle_pairs(pairs, seed)
            continue
        if name not in present:
            raise DataError(f"shuffle names {name} but the run has no {name} side input; drop it from shuffle or "
                            f"add it to the run's side inputs")
        rows, desc[f"shuffle:{name}"] = _permutation(present[name], seed)
        if name == "item_text" and text is not None:
            text = text[rows]
        elif name == "item_image" and image is not None:
            image = image[rows]
        elif name == "user_profiles" and prof is not None:
            prof = prof[rows]
        else:
            attrs = {k: v[rows] for k, v in attrs.items()}
    return SideArrays(text, image, attrs, prof, pairs, desc)
