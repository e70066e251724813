"""Model identity: weight files hashed in full, cached by (size, mtime_ns, inode); the registry uses it and checks a
folder's SHA256SUMS on every load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmrec_local.errors import ModelNotFoundError
from llmrec_local.hashing import cached_file_sha256s, file_sha256, weight_files_hash
from llmrec_local.llm.registry import resolve_model


def _fake_llm(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_cache_reuses_digest_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache.json"
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"a" * 1000)
    assert cached_file_sha256s([f], cache)[f.resolve()] == file_sha256(f)
    entry = json.loads(cache.read_text())[str(f.resolve())]
    assert entry[:3] == [1000, f.stat().st_mtime_ns, f.stat().st_ino]
    # a cache hit does not read the file: prove it by making reads fail
    monkeypatch.setattr("llmrec_local.hashing.file_sha256", lambda p: pytest.fail("re-read a cached file"))
    assert cached_file_sha256s([f], cache)[f.resolve()] == entry[3]
    monkeypatch.undo()
    f.write_bytes(b"b" * 1000)  # same size, new content: mtime moves, the digest is recomputed
    os.utime(f, ns=(f.stat().st_atime_ns, entry[1] + 1_000_000))
    assert cached_file_sha256s([f], cache)[f.resolve()] == file_sha256(f) != entry[3]


def test_unwritable_cache_still_answers(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"x")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cached_file_sha256s([f], blocker / "cache.json")[f.resolve()] == file_sha256(f)


def test_same_size_swapped_weights_change_the_model_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    a = _fake_llm(tmp_path / "a" / "m", b"\x00" * 4096)
    b = _fake_llm(tmp_path / "b" / "m", b"\x01" * 4096)
    id_a, id_b = resolve_model(str(a)).model_id, resolve_model(str(b)).model_id
    assert id_a.startswith("m@") and id_a != id_b  # sizes alone (the old fingerprint) could not tell them apart
    assert resolve_model(str(a)).model_id == id_a
    assert weight_files_hash([a / "model.safetensors"]) != weight_files_hash([b / "model.safetensors"])


def test_manifest_in_folder_is_verified_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "cache"))
    folder = _fake_llm(tmp_path / "m", b"\x00" * 4096)
    (folder / "SHA256SUMS").write_text(f"{file_sha256(folder / 'model.safetensors')}  model.safetensors\n")
    assert resolve_model(str(folder)).path == folder.resolve()  # no verify_hashes flag needed
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[7] = 1
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelNotFoundError, match="model.safetensors: sha256 .* != expected"):
        resolve_model(str(folder))
