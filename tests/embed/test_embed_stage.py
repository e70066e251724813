"""The embed stage end to end with the real MiniLM and a tiny random CLIP: artifacts, alignment, missing inputs,
caching (artifact skip and per-row cache), config checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from testkit.fakes import rewrite_artifact_file

from llmrec_local.artifacts.base import ArtifactWriter, read_manifest
from llmrec_local.artifacts.embeddings import load_embedding
from llmrec_local.config import from_mapping
from llmrec_local.embed import minilm
from llmrec_local.embed.config import EmbedConfig
from llmrec_local.embed.image import ImageEncoder
from llmrec_local.embed.stage import embed
from llmrec_local.embed.text import TextEncoder
from llmrec_local.errors import ArtifactError, ConfigError

TEXT_ONLY = EmbedConfig(sources=("item_text",), device="cpu", batch_size=16)


@pytest.fixture
def encode_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Counts the rows handed to the real encoders (the wrapped methods still run)."""
    calls: dict[str, list[int]] = {"text": [], "image": []}
    text_encode, image_encode = TextEncoder.encode, ImageEncoder.encode_files

    def counted_text(self, texts):
        calls["text"].append(len(texts))
        return text_encode(self, texts)

    def counted_image(self, paths):
        calls["image"].append(len(paths))
        return image_encode(self, paths)

    monkeypatch.setattr(TextEncoder, "encode", counted_text)
    monkeypatch.setattr(ImageEncoder, "encode_files", counted_image)
    return calls


def test_all_sources(dataset: Path, augment: Path, clip_dir: Path, minilm_dir: Path, tmp_path: Path,
                     encode_calls) -> None:
    config = EmbedConfig(sources=("item_text", "item_attributes", "user_profiles", "item_image"),
                         image_model=str(clip_dir), device="cpu", batch_size=4)
    out = tmp_path / "embed"
    paths = embed(config, dataset, out, augment=augment, progress=False)
    assert sorted(paths) == ["item_attributes:country", "item_attributes:director", "item_attributes:language",
                             "item_image", "item_text", "user_profiles"]
    assert paths["item_attributes:director"] == out / "item_attributes" / "director"

    text = load_embedding(paths["item_text"], 6, entity="item")
    assert text.vectors.shape == (6, 384) and text.mask.tolist() == [True] * 5 + [False]
    np.testing.assert_array_equal(text.vectors[5], 0.0)
    # row i is item i: compare with a direct encoding of item 2's rendered text
    direct = TextEncoder(minilm_dir, name="m", device="cpu").encode(["Battle of the Somme (1985). Genres: "
                                                                     "Documentary, War"])
    np.testing.assert_allclose(text.vectors[2], direct[0], atol=1e-5)
    manifest = read_manifest(paths["item_text"])
    assert manifest["source"] == "item_text" and manifest["entity"] == "item" and manifest["dim"] == 384
    assert manifest["model"]["name"] == minilm.ALIAS
    assert manifest["model"]["weights_sha256"] == {"model.safetensors": minilm.MINILM_SHA256}
    assert manifest["counts"] == {"rows": 6, "with_vector": 5, "missing": 1, "no_input": 1, "encoded": 5,
                                  "from_cache": 0}

    director = load_embedding(paths["item_attributes:director"], 6, entity="item")
    assert director.mask.tolist() == [True, True, True, True, False, False]
    np.testing.assert_array_equal(director.vectors[0], director.vectors[1])  # same value "Jane Doe"
    # "Jane Doe" twice is encoded once
    assert read_manifest(paths["item_attributes:director"])["counts"]["encoded"] == 3

    profiles = load_embedding(paths["user_profiles"], 4, entity="user")
    assert profiles.mask.tolist() == [True, True, False, False]  # user 2 empty text, user 3 no record

    image = load_embedding(paths["item_image"], 6, entity="item")
    assert image.vectors.shape == (6, 64)
    assert image.mask.tolist() == [True, True, True, False, False, False]
    np.testing.assert_array_equal(image.vectors[3:], 0.0)
    counts = read_manifest(paths["item_image"])["counts"]
    assert (counts["missing"], counts["no_input"], counts["missing_file"], counts["unreadable"]) == (3, 1, 1, 1)
    assert "unreadable: 1" in (paths["item_image"] / "summary.md").read_text()
    assert sum(encode_calls["image"]) == 4  # 3 posters + the corrupt one; the absent file is never opened

    with pytest.raises(ArtifactError, match="outside this dataset"):
        load_embedding(paths["item_text"], 3, entity="item")
    with pytest.raises(ArtifactError, match="holds user embeddings"):
        load_embedding(paths["user_profiles"], 4, entity="item")


def test_cache_reuse_and_single_row_reencode(dataset: Path, tmp_path: Path, encode_calls) -> None:
    out = tmp_path / "embed"
    embed(TEXT_ONLY, dataset, out, progress=False)
    assert encode_calls["text"] == [5]
    first = load_embedding(out / "item_text", 6)

    embed(TEXT_ONLY, dataset, out, progress=False)
    assert encode_calls["text"] == [5]  # unchanged: artifact reused, nothing encoded

    # change one title: the artifact is rebuilt, but only that row is encoded
    items_file = dataset / "items.parquet"
    items = pl.read_parquet(items_file)
    items = items.with_columns(pl.when(pl.col("item") == 3).then(pl.lit("Space Cowboys")).otherwise(pl.col("title"))
                               .alias("title"))
    rewrite_artifact_file(dataset, "items.parquet", items.write_parquet)
    embed(TEXT_ONLY, dataset, out, progress=False)
    assert encode_calls["text"] == [5, 1]
    second = load_embedding(out / "item_text", 6)
    counts = read_manifest(out / "item_text")["counts"]
    assert counts["encoded"] == 1 and counts["from_cache"] == 4
    changed = np.arange(6) == 3
    np.testing.assert_array_equal(second.vectors[~changed], first.vectors[~changed])
    assert not np.allclose(second.vectors[3], first.vectors[3])

    # losing the artifact but not the row cache: rebuilt with zero encoder calls
    import shutil

    shutil.rmtree(out / "item_text")
    embed(TEXT_ONLY, dataset, out, progress=False)
    assert encode_calls["text"] == [5, 1]
    np.testing.assert_array_equal(load_embedding(out / "item_text", 6).vectors, second.vectors)


def test_other_encoder_needs_force(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "embed"
    embed(TEXT_ONLY, dataset, out, progress=False)
    shorter = dataclasses.replace(TEXT_ONLY, max_seq_length=16)
    with pytest.raises(ArtifactError, match="config hash"):
        embed(shorter, dataset, out, progress=False)
    embed(shorter, dataset, out, force=True, progress=False)
    assert read_manifest(out / "item_text")["model"]["max_seq_length"] == 16


def test_text_model_by_local_path(dataset: Path, minilm_dir: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(TEXT_ONLY, text_model=str(minilm_dir))
    path = embed(config, dataset, tmp_path / "embed", progress=False)["item_text"]
    model = read_manifest(path)["model"]
    assert model["path"] == str(minilm_dir.resolve()) and model["model_id"].startswith(model["name"] + "@")
    builtin = embed(TEXT_ONLY, dataset, tmp_path / "builtin", progress=False)["item_text"]
    np.testing.assert_allclose(load_embedding(path, 6).vectors, load_embedding(builtin, 6).vectors, atol=1e-6)


def test_damaged_row_cache_is_ignored(dataset: Path, tmp_path: Path, encode_calls, embedding_cache: Path) -> None:
    out = tmp_path / "embed"
    embed(TEXT_ONLY, dataset, out, progress=False)
    (cache_file,) = embedding_cache.glob("*/*.npz")
    cache_file.write_bytes(b"garbage")
    embed(TEXT_ONLY, dataset, out, force=True, progress=False)
    assert encode_calls["text"] == [5, 5]


def test_config_checks(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need the augmentation folder"):
        embed(EmbedConfig(device="cpu"), dataset, tmp_path / "e")
    with pytest.raises(ConfigError, match="unknown key"):
        from_mapping(EmbedConfig, {"text_modle": "x"}, where="embed")
    with pytest.raises(ConfigError, match="not one of"):
        from_mapping(EmbedConfig, {"sources": ["item_txt"]}, where="embed")
    with pytest.raises(ConfigError, match="image_model is not set"):
        from_mapping(EmbedConfig, {"sources": ["item_image"]}, where="embed")
    cfg = from_mapping(EmbedConfig, {"sources": ["item_text"], "attribute_mode": "concat"}, where="embed")
    assert cfg.sources == ("item_text",)


def test_concat_attributes_and_image_dir(dataset: Path, augment: Path, clip_dir: Path, tmp_path: Path,
                                         make_poster) -> None:
    images = tmp_path / "posters_by_id"
    images.mkdir()
    make_poster(images / "m4.png", seed=4)
    config = EmbedConfig(sources=("item_attributes", "item_image"), attribute_mode="concat",
                         image_model=str(clip_dir / "open_clip_model.safetensors"), image_arch="No-Such-ViT",
                         image_dir=str(images), device="cpu")
    with pytest.raises(ConfigError, match="not an open_clip architecture"):
        embed(config, dataset, tmp_path / "bad", augment=augment, progress=False)
    config = dataclasses.replace(config, image_model=str(clip_dir), image_arch=None)
    paths = embed(config, dataset, tmp_path / "embed", augment=augment, progress=False)
    assert set(paths) == {"item_attributes", "item_image"}
    attrs = load_embedding(paths["item_attributes"], 6)
    assert attrs.mask.tolist() == [True] * 4 + [False] * 2
    assert load_embedding(paths["item_image"], 6).mask.tolist() == [False] * 4 + [True, False]


def test_unfinished_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        embed(TEXT_ONLY, tmp_path / "nope", tmp_path / "e")
    with pytest.raises(ArtifactError, match="expected a 'prepare' artifact"):
        with ArtifactWriter(tmp_path / "other", stage="train", config_hash="x"):
            pass
        embed(TEXT_ONLY, tmp_path / "other", tmp_path / "e")
