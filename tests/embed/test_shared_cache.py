"""The shared embedding cache: one store for every workdir (a second workdir encodes nothing and writes the same
artifact bytes), safe under concurrent writers (append-only segments), size report, clearing, compaction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.embeddings import IDS_FILE, MASK_FILE, VECTORS_FILE
from llmrec_local.embed import cache as cache_mod
from llmrec_local.embed.__main__ import main as embed_main
from llmrec_local.embed.cache import EmbeddingCache, cache_report, clear_cache, embedding_cache_dir
from llmrec_local.embed.config import EmbedConfig
from llmrec_local.embed.stage import embed
from llmrec_local.embed.text import TextEncoder

TEXT_ONLY = EmbedConfig(sources=("item_text",), device="cpu", batch_size=16)


def test_second_workdir_encodes_nothing_and_writes_identical_bytes(dataset: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    encode = TextEncoder.encode

    def counted(self, texts):
        calls.append(len(texts))
        return encode(self, texts)

    monkeypatch.setattr(TextEncoder, "encode", counted)
    first = embed(TEXT_ONLY, dataset, tmp_path / "workdir_a" / "embed", progress=False)["item_text"]
    assert calls == [5]
    second = embed(TEXT_ONLY, dataset, tmp_path / "workdir_b" / "embed", progress=False)["item_text"]
    assert calls == [5]  # every text was found in the shared cache
    for name in (IDS_FILE, VECTORS_FILE, MASK_FILE):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    counts = read_manifest(second)["counts"]
    assert counts["encoded"] == 0 and counts["from_cache"] == 5


def test_configured_folder_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_EMBED_CACHE_DIR", str(tmp_path / "env"))
    assert embedding_cache_dir() == tmp_path / "env"
    assert embedding_cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg"
    monkeypatch.delenv("LLMREC_EMBED_CACHE_DIR")
    monkeypatch.setenv("LLMREC_CACHE_DIR", str(tmp_path / "base"))
    assert embedding_cache_dir() == tmp_path / "base" / "embeddings"


def test_concurrent_writers_keep_every_row(tmp_path: Path) -> None:
    # two processes' views opened before either saved: neither overwrites the other's rows
    a, b = EmbeddingCache(tmp_path, "enc"), EmbeddingCache(tmp_path, "enc")
    a.add(["k1", "k2"], np.ones((2, 3), dtype=np.float32))
    b.add(["k2", "k3"], np.full((2, 3), 2.0, dtype=np.float32))
    a.save()
    b.save()
    reader = EmbeddingCache(tmp_path, "enc")
    found, vectors = reader.get(["k1", "k3", "nope"])
    np.testing.assert_array_equal(found, [True, True, False])
    np.testing.assert_array_equal(vectors, [[1, 1, 1], [2, 2, 2]])
    assert not list((tmp_path / "enc").glob(".*"))  # no temporary file left behind
    report = cache_report(tmp_path)
    assert report["encoders"]["enc"]["segments"] == 2 and report["entries"] == 4 and report["bytes"] > 0


def test_damaged_and_vanished_segments_cost_only_reencoding(tmp_path: Path) -> None:
    good = EmbeddingCache(tmp_path, "enc")
    good.add(["k1"], np.ones((1, 2), dtype=np.float32))
    good.save()
    (tmp_path / "enc" / "0-bad.npz").write_bytes(b"garbage")
    found, _ = EmbeddingCache(tmp_path, "enc").get(["k1"])
    assert found.tolist() == [True]


def test_compaction_merges_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "COMPACT_AT", 3)
    for i in range(5):
        cache = EmbeddingCache(tmp_path, "enc")
        cache.add([f"k{i}"], np.full((1, 2), i, dtype=np.float32))
        cache.save()
    assert len(list((tmp_path / "enc").glob("*.npz"))) <= 3
    found, vectors = EmbeddingCache(tmp_path, "enc").get([f"k{i}" for i in range(5)])
    assert found.all() and vectors[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_report_and_clear_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("enc_a", "enc_b"):
        cache = EmbeddingCache(tmp_path, key)
        cache.add(["k"], np.ones((1, 4), dtype=np.float32))
        cache.save()
    assert embed_main(["cache", "--dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["encoders"]) == {"enc_a", "enc_b"} and report["encoders"]["enc_a"]["dim"] == 4
    assert embed_main(["cache", "--dir", str(tmp_path), "--clear", "--encoder", "enc_a"]) == 0
    assert json.loads(capsys.readouterr().out)["freed_bytes"] > 0
    assert set(cache_report(tmp_path)["encoders"]) == {"enc_b"}
    assert clear_cache(tmp_path) > 0 and cache_report(tmp_path)["entries"] == 0
