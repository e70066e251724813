"""The ``embed`` stage: encode item text, generated item attributes, user profiles and posters into embedding
artifacts (format: :mod:`llmrec_local.artifacts.embeddings`), one per source, under ``<out>/<source folder>/``.

Caching, at two levels:

1. **Artifact skip.** Each artifact's config hash covers the source and the encoder identity (weights sha256, dtype,
   max_seq_length, normalisation); its manifest also records ``input_hash``, a hash of every row's content key. A
   complete artifact with the same config hash and input hash is reused untouched. Same config but changed inputs
   (a new augmentation run, another text field) rebuilds it; another encoder is an error unless ``force``.
2. **Row cache.** The shared embedding cache (:mod:`llmrec_local.embed.cache`, one per machine, not per workdir)
   maps a row's content key to its vector, where ``key = sha256(encoder key, text)`` for text and
   ``sha256(encoder key, sha256(image file bytes))`` for images. Only rows whose key is not cached are encoded
   (identical texts once, across every workdir), so editing one item's text re-encodes one row. The cache only
   grows; ``python -m llmrec_local.embed cache`` reports its size and ``--clear`` empties it.

Rows without input (no record, empty text, no poster, unreadable image) are zero vectors with ``mask = False``;
their number is in the manifest ``counts`` and in each artifact's ``summary.md``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.base import ArtifactWriter, read_manifest, reusable, write_summary
from ..artifacts.embeddings import STAGE, write_embedding
from ..config import to_dict
from ..errors import ConfigError, DataError
from ..executors.ray_executor import RaySession, check_executor, map_batches
from ..hashing import file_sha256, stable_hash
from . import minilm
from .cache import EmbeddingCache, embedding_cache_dir
from .config import EmbedConfig
from .image import ImageEncoder
from .sources import (
    AUGMENT_SOURCES,
    SourceInputs,
    attribute_inputs,
    image_inputs,
    item_text_inputs,
    profile_inputs,
    text_table_inputs,
)
from .text import TextEncoder

log = logging.getLogger(__name__)

def _row_key(encoder_key: str, content: str) -> str:
    return hashlib.sha256(f"{encoder_key}\0{content}".encode("utf-8")).hexdigest()[:32]


def _content_keys(src: SourceInputs, encoder_key: str) -> tuple[list[str | None], int]:
    """Per row the cache key of its content (None: no input); also the number of image paths that are not files."""
    if src.kind == "text":
        return [None if t is None else _row_key(encoder_key, t) for t in src.inputs], 0
    keys: list[str | None] = []
    absent = 0
    for p in src.inputs:
        if p is None:
            keys.append(None)
        elif not Path(p).is_file():
            keys.append(None)
            absent += 1
        else:
            keys.append(_row_key(encoder_key, file_sha256(p)))
    return keys, absent


def build_text_encoder(config: EmbedConfig, progress: bool = True) -> TextEncoder:
    """The TextEncoder named by ``config.text_model``: the built-in MiniLM, else through the model registry."""
    if config.text_model == minilm.ALIAS:
        path, name, model_id, settings = minilm.materialize(), minilm.ALIAS, minilm.MODEL_ID, {}
    else:
        from ..llm.registry import resolve_model

        resolved = resolve_model(config.text_model, kind="text_embedder", models_dir=config.models_dir)
        path, name, model_id, settings = resolved.path, resolved.alias, resolved.model_id, resolved.settings
    max_len = config.max_seq_length if config.max_seq_length is not None else settings.get("max_seq_length")
    return TextEncoder(path, name=name, model_id=model_id, device=config.device, dtype=config.dtype,
                       batch_size=config.batch_size, max_seq_length=max_len, normalize=config.normalize,
                       progress=progress)


def build_image_encoder(config: EmbedConfig, progress: bool = True) -> ImageEncoder:
    """The ImageEncoder named by ``config.image_model`` (registry alias, local-dir folder or checkpoint file)."""
    from ..llm.registry import resolve_model

    assert config.image_model is not None  # guaranteed by EmbedConfig.__post_init__
    resolved = resolve_model(config.image_model, kind="image_encoder", models_dir=config.models_dir)
    arch = config.image_arch or resolved.settings.get("architecture")
    return ImageEncoder(resolved.path, arch=arch, name=resolved.alias, model_id=resolved.model_id,
                        device=config.device, dtype=config.dtype, batch_size=config.batch_size,
                        normalize=config.normalize, progress=progress)


def check_augment_folder(config: EmbedConfig, augment: str | Path | None) -> None:
    """ConfigError when a requested source needs the augmentation folder and none is given."""
    need_augment = [s for s in config.sources if s in AUGMENT_SOURCES]
    if need_augment and augment is None:
        raise ConfigError(f"sources {need_augment} need the augmentation folder (--augment <out>/augment); or embed "
                          f"only the dataset with --sources item_text")


def embed(config: EmbedConfig, dataset: Path, out: Path, *, augment: Path | None = None, force: bool = False,
          progress: bool = True) -> dict[str, Path]:
    """Run the embed stage: one embedding artifact per source under `out`.

    Args:
        config: stage settings.
        dataset: dataset artifact folder (stage ``prepare``).
        out: output folder; artifacts go to ``out/<source folder>`` (``item_text``, ``item_image``,
            ``user_profiles``, ``user_text``, ``item_attributes/<field>`` or ``item_attributes/_concat``).
        augment: the augmentation folder holding ``item_attributes/`` and ``user_profiles/`` job folders; needed
            when those sources are requested.
        force: rebuild artifacts even when a complete one of another encoder sits at the path (cached rows are
            still reused: they are keyed by content and encoder identity).
        progress: progress bars on stderr.

    Returns:
        source name -> artifact folder, e.g. ``{"item_text": out/"item_text", "item_attributes:director": ...}``.
    """
    from ..artifacts.dataset import Dataset

    dataset, out = Path(dataset), Path(out)
    check_augment_folder(config, augment)
    aug_dir = Path(augment) if augment is not None else None
    if aug_dir is not None and not aug_dir.is_dir():
        raise DataError(f"augmentation folder {aug_dir} does not exist; run `python -m llmrec_local.augment` first")
    ds = Dataset.load(dataset)
    items = ds.items()
    plan: list[SourceInputs] = []
    for source in config.sources:
        if source == "item_text" and config.item_text_file is not None:
            plan.append(text_table_inputs(config.item_text_file, ds.vocabulary("item"), "item_text"))
        elif source == "item_text":
            plan.append(item_text_inputs(items, config.item_text_fields))
        elif source == "user_text":
            assert config.user_text_file is not None  # guaranteed by EmbedConfig.__post_init__
            plan.append(text_table_inputs(config.user_text_file, ds.vocabulary("user"), "user_text"))
        elif source == "item_attributes":
            assert aug_dir is not None  # checked above
            plan.extend(attribute_inputs(aug_dir, ds.n_items, mode=config.attribute_mode,
                                         fields=config.attribute_fields,
                                         unknown_as_missing=config.unknown_as_missing))
        elif source == "user_profiles":
            assert aug_dir is not None  # checked above
            plan.append(profile_inputs(aug_dir, ds.n_users))
        else:
            image_dir = Path(config.image_dir) if config.image_dir else None
            plan.append(image_inputs(items, ds.path, image_dir))

    dataset_info = {"path": str(Path(ds.path).resolve()), "config_hash": ds.manifest.get("config_hash"),
                    "n_items": ds.n_items, "n_users": ds.n_users}
    encoders: dict[str, TextEncoder | ImageEncoder] = {}
    results: dict[str, Path] = {}
    session = None
    if config.executor == "ray":
        check_executor(config.executor)
        session = RaySession(config.ray)
    try:
        for src in plan:
            if src.kind not in encoders:
                encoders[src.kind] = (build_text_encoder(config, progress) if src.kind == "text"
                                      else build_image_encoder(config, progress))
            results[src.source] = _embed_source(src, encoders[src.kind], out, dataset_info, config, force=force,
                                                session=session)
    finally:
        if session is not None:
            session.close()
    return results


def _text_worker(encoder: TextEncoder) -> Callable[[Sequence[str]], list[np.ndarray]]:
    """Run in each Ray actor: one forward pass per batch, one vector per text."""
    return lambda texts: list(encoder.encode_batch(texts))


def _image_worker(encoder: ImageEncoder) -> Callable[[Sequence[Path]], list[tuple[np.ndarray, bool]]]:
    """Run in each Ray actor: one forward pass per batch, (vector, readable) per file."""

    def run(paths: Sequence[Path]) -> list[tuple[np.ndarray, bool]]:
        vectors, ok = encoder.encode_file_batch(paths)
        return list(zip(vectors, ok.tolist()))

    return run


def _encode(encoder: TextEncoder | ImageEncoder, inputs: list[Any],
            session: RaySession | None) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 (n, dim), ok bool (n,)) of `inputs` (texts, or image paths: unreadable ones are not ok).

    In this process, or with a Ray `session` on its actor pool (each actor unpickles the encoder and loads its own
    model copy); either way the forward passes are the encoder's `batches`, so the vectors are bit-identical."""
    text = isinstance(encoder, TextEncoder)
    if not text:
        inputs = [Path(p) for p in inputs]
    if session is None:
        if text:
            return encoder.encode(inputs), np.ones(len(inputs), dtype=bool)
        return encoder.encode_files(inputs)
    groups = encoder.batches(inputs)
    make_worker = functools.partial(_text_worker if text else _image_worker, encoder)
    rows: list[Any] = [None] * len(inputs)
    for index, outputs in map_batches(make_worker, [[inputs[i] for i in g] for g in groups], session.settings,
                                      session=session):
        for i, output in zip(groups[index], outputs, strict=True):
            rows[i] = output
    if text:
        return np.stack(rows).astype(np.float32, copy=False), np.ones(len(inputs), dtype=bool)
    return (np.stack([v for v, _ in rows]).astype(np.float32, copy=False),
            np.array([ok for _, ok in rows], dtype=bool))


def _embed_source(src: SourceInputs, encoder: TextEncoder | ImageEncoder, out: Path, dataset_info: dict[str, Any],
                  config: EmbedConfig, *, force: bool, session: RaySession | None) -> Path:
    """Build (or reuse) the artifact of one source; see the module docstring for the caching rules."""
    path = out / src.folder
    cfg_hash = stable_hash({"stage": STAGE, "source": src.source, "entity": src.entity, "encoder": encoder.key})
    keys, absent_files = _content_keys(src, encoder.key)
    input_hash = stable_hash([len(keys), keys], 32)
    if reusable(path, STAGE, cfg_hash, force=force):
        if read_manifest(path).get("input_hash") == input_hash:
            log.info("%s: unchanged inputs and encoder, reusing %s", src.source, path)
            return path
        log.info("%s: inputs changed since %s was built; rebuilding it (cached rows are reused)", src.source, path)

    cache = EmbeddingCache(embedding_cache_dir(config.cache_dir), encoder.key)
    present = [i for i, k in enumerate(keys) if k is not None]
    present_keys = [k for k in keys if k is not None]
    found, _ = cache.get(present_keys)
    # Identical contents (e.g. many items whose director is "unknown") are encoded once.
    todo: dict[str, int] = {}
    for i, key, hit in zip(present, present_keys, found):
        if not hit and key not in todo:
            todo[key] = i
    todo_keys = list(todo)
    unreadable = 0
    if todo_keys:
        rows = list(todo.values())
        new_vectors, new_ok = _encode(encoder, [src.inputs[i] for i in rows], session)
        unreadable = int((~new_ok).sum())
        cache.add([k for k, ok in zip(todo_keys, new_ok) if ok], new_vectors[new_ok])
        cache.save()
    dim = cache.dim if cache.dim is not None else encoder.dim

    n = len(keys)
    vectors = np.zeros((n, dim), dtype=np.float32)
    mask = np.zeros(n, dtype=bool)
    if present:
        ok, present_vectors = cache.get(present_keys)
        present_rows = np.asarray(present, dtype=np.int64)
        vectors[present_rows[ok]] = present_vectors
        mask[present_rows[ok]] = True
    counts = {
        "rows": n,
        "with_vector": int(mask.sum()),
        "missing": int(n - mask.sum()),
        "no_input": int(n - len(present) - absent_files),
        "encoded": len(todo_keys) - unreadable,
        "from_cache": int(found.sum()),
    }
    if src.kind == "image":
        counts.update(missing_file=absent_files, unreadable=unreadable)
    with ArtifactWriter(path, stage=STAGE, config_hash=cfg_hash) as w:
        write_embedding(w.dir, w.manifest, src.entity, src.ids, vectors, mask)
        write_summary(w.dir, _summary(src, encoder.identity, dim, counts))
        w.manifest.update(source=src.source, entity=src.entity, dim=dim, model=encoder.identity,
                          input_hash=input_hash, counts=counts, inputs=src.details, dataset=dataset_info,
                          config=to_dict(config))
    log.info("%s: %d rows (%d without vector), %d encoded, %d from cache -> %s", src.source, n, counts["missing"],
             counts["encoded"], counts["from_cache"], path)
    return path


def _summary(src: SourceInputs, identity: dict[str, Any], dim: int, counts: dict[str, int]) -> str:
    lines = [f"# Embeddings: {src.source}", "",
             f"- entity: {src.entity}, rows: {counts['rows']}, dim: {dim}",
             f"- model: {identity['name']} ({identity.get('model_id') or identity['path']})",
             *(f"  - {name} sha256 {digest}" for name, digest in identity["weights_sha256"].items()),
             f"- rows with a vector: {counts['with_vector']}; without (zero vector, mask False): {counts['missing']}"]
    if src.kind == "image":
        lines.append(f"  - no poster listed: {counts['no_input']}, file missing: {counts['missing_file']}, "
                     f"unreadable: {counts['unreadable']}")
    else:
        lines.append(f"  - no text: {counts['no_input']}")
    lines.append(f"- encoded now: {counts['encoded']}, reused from cache: {counts['from_cache']}")
    return "\n".join(lines) + "\n"
