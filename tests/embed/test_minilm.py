"""The embedded MiniLM: located in the installed wheel, verified by sha256, materialised once; tampering refused."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from llmrec_local.embed import minilm
from llmrec_local.errors import ModelNotFoundError
from llmrec_local.hashing import file_sha256


def _flip_byte(path: Path, offset: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_wheel_zip_found_without_import() -> None:
    import sys

    path = minilm.wheel_zip_path()
    assert path.name == "model.zip" and path.is_file()
    assert "all_minilm_l6_v2" not in sys.modules  # the package prints on import; we only read its files


def test_materialize_verifies_and_is_idempotent(minilm_dir: Path, cache_dir: Path) -> None:
    assert minilm_dir == cache_dir / "models" / minilm.ALIAS
    assert file_sha256(minilm_dir / "model.safetensors") == minilm.MINILM_SHA256
    stamp = (minilm_dir / "model.safetensors").stat().st_mtime_ns
    assert minilm.materialize() == minilm_dir
    assert (minilm_dir / "model.safetensors").stat().st_mtime_ns == stamp  # not re-extracted
    assert not [p for p in minilm_dir.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_tampered_folder_is_refused(minilm_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models" / minilm.ALIAS
    shutil.copytree(minilm_dir, copy)
    minilm.verify_folder(copy)
    _flip_byte(copy / "model.safetensors")
    with pytest.raises(ModelNotFoundError, match="sha256 .* is not the official"):
        minilm.verify_folder(copy)
    # the same tampered folder sitting in a cache is refused too, not silently used
    with pytest.raises(ModelNotFoundError, match="refusing"):
        minilm.materialize(cache_dir=tmp_path)


def test_tampered_zip_is_refused_and_nothing_published(tmp_path: Path) -> None:
    bad_zip = tmp_path / "model.zip"
    with zipfile.ZipFile(minilm.wheel_zip_path()) as src, zipfile.ZipFile(bad_zip, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "model.safetensors":
                data = bytearray(data)
                data[-10] ^= 0x01
                data = bytes(data)
            dst.writestr(info.filename, data)
    with pytest.raises(ModelNotFoundError, match="not the official"):
        minilm.materialize(cache_dir=tmp_path / "cache", zip_path=bad_zip)
    models = tmp_path / "cache" / "models"
    assert not (models / minilm.ALIAS).exists()
    assert list(models.iterdir()) == []  # the staging folder was removed


def test_incomplete_folder_is_refused(minilm_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(minilm_dir, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match="tokenizer.json"):
        minilm.verify_folder(copy)
