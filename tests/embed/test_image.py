"""A tiny random open_clip model (local-dir folder) on generated images through the real open_clip path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_local.embed.image import ImageEncoder, load_image
from llmrec_local.errors import ConfigError, ModelNotFoundError


@pytest.fixture(scope="module")
def encoder(clip_dir: Path) -> ImageEncoder:
    return ImageEncoder(clip_dir, name="tiny-clip", device="cpu", batch_size=2, progress=False)


def test_encode_files_with_missing_and_corrupt(encoder: ImageEncoder, tmp_path: Path, make_poster) -> None:
    good = [make_poster(tmp_path / f"{i}.png", seed=i, size=(40 + 10 * i, 90)) for i in range(3)]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    paths = [good[0], tmp_path / "absent.png", good[1], corrupt, good[2]]
    vectors, ok = encoder.encode_files(paths)
    assert vectors.shape == (5, 64) and vectors.dtype == np.float32
    assert ok.tolist() == [True, False, True, False, True]
    np.testing.assert_array_equal(vectors[~ok], 0.0)
    np.testing.assert_allclose(np.linalg.norm(vectors[ok], axis=1), 1.0, atol=1e-5)
    # different images give different vectors; the same image the same vector whatever the batch it lands in
    assert not np.allclose(vectors[0], vectors[2])
    alone, _ = encoder.encode_files([good[1]])
    np.testing.assert_allclose(alone[0], vectors[2], atol=1e-5)


def test_weights_reload_bit_identical(clip_dir: Path, encoder: ImageEncoder, tmp_path: Path, make_poster) -> None:
    poster = make_poster(tmp_path / "p.png", seed=7)
    other = ImageEncoder(clip_dir, name="tiny-clip", device="cpu", progress=False)
    assert other.key == encoder.key
    np.testing.assert_array_equal(other.encode_files([poster])[0], encoder.encode_files([poster])[0])
    assert encoder.dim == 64


def test_model_path_errors(clip_dir: Path, tmp_path: Path) -> None:
    weights = clip_dir / "open_clip_model.safetensors"
    with pytest.raises(ConfigError, match="architecture"):
        ImageEncoder(weights, name="x", device="cpu")
    with pytest.raises(ConfigError, match="not an open_clip architecture"):
        ImageEncoder(weights, arch="No-Such-ViT", name="x", device="cpu").encode_files([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="open_clip_config.json"):
        ImageEncoder(tmp_path / "empty", name="x", device="cpu")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        ImageEncoder(tmp_path / "nowhere", name="x", device="cpu")


def test_load_image_modes(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (10, 12), 128).save(tmp_path / "gray.png")
    Image.new("RGBA", (10, 12)).save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "gray.png").mode == "RGB"
    assert load_image(tmp_path / "rgba.png").mode == "RGB"
    assert load_image(tmp_path / "none.png") is None
