"""Artifact folders: atomic publish, skip-if-done, hash mismatch, no partial output, resumable staging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrec_local.artifacts.base import (
    COMPLETE_MARKER,
    ArtifactWriter,
    is_complete,
    read_manifest,
    require_stage,
    reusable,
)
from llmrec_local.errors import ArtifactError


def _write(path: Path, h: str, content: str = "x", **kw: object) -> None:
    with ArtifactWriter(path, stage="demo", config_hash=h, **kw) as w:
        (w.dir / "data.txt").write_text(content)
        w.manifest["counts"] = {"rows": 1}


def test_publish_writes_manifest_and_marker(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _write(out, "h1")
    assert is_complete(out) and (out / "data.txt").read_text() == "x"
    manifest = read_manifest(out)
    assert manifest["stage"] == "demo" and manifest["config_hash"] == "h1" and manifest["counts"] == {"rows": 1}
    assert "numpy" in manifest["libraries"] and manifest["wall_s"] >= 0
    assert not list(tmp_path.glob(".*partial"))


def test_reusable_skip_and_mismatch(tmp_path: Path) -> None:
    out = tmp_path / "a"
    assert not reusable(out, "demo", "h1")
    _write(out, "h1")
    assert reusable(out, "demo", "h1")
    with pytest.raises(ArtifactError, match="config hash h1, but this run's config hash is h2"):
        reusable(out, "demo", "h2")
    assert not reusable(out, "demo", "h2", force=True)
    with pytest.raises(ArtifactError, match="is a 'demo' artifact, expected a 'train' artifact"):
        require_stage(out, "train")


def test_failure_leaves_no_partial_and_keeps_old(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _write(out, "h1", "old")
    with pytest.raises(RuntimeError):
        with ArtifactWriter(out, stage="demo", config_hash="h2") as w:
            (w.dir / "data.txt").write_text("new")
            raise RuntimeError("boom")
    assert (out / "data.txt").read_text() == "old" and read_manifest(out)["config_hash"] == "h1"
    assert not (tmp_path / ".a.partial").exists()


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _write(out, "h1", "old")
    _write(out, "h2", "new")
    assert (out / "data.txt").read_text() == "new" and read_manifest(out)["config_hash"] == "h2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_resume_keeps_staging_only_for_same_config(tmp_path: Path) -> None:
    out = tmp_path / "a"
    with pytest.raises(RuntimeError):
        with ArtifactWriter(out, stage="demo", config_hash="h1", resume=True) as w:
            (w.dir / "shard-0").write_text("done")
            raise RuntimeError("killed")
    with ArtifactWriter(out, stage="demo", config_hash="h1", resume=True) as w:
        assert (w.dir / "shard-0").read_text() == "done"
    assert (out / "shard-0").exists()
    with pytest.raises(RuntimeError):
        with ArtifactWriter(tmp_path / "b", stage="demo", config_hash="h1", resume=True) as w:
            (w.dir / "shard-0").write_text("done")
            raise RuntimeError("killed")
    with ArtifactWriter(tmp_path / "b", stage="demo", config_hash="other", resume=True) as w:
        assert not (w.dir / "shard-0").exists()


def test_incomplete_and_foreign_schema_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        read_manifest(tmp_path / "none")
    (tmp_path / "half").mkdir()
    with pytest.raises(ArtifactError, match="incomplete"):
        read_manifest(tmp_path / "half")
    out = tmp_path / "a"
    _write(out, "h1")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 999
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema version 999"):
        read_manifest(out)
    assert (out / COMPLETE_MARKER).exists()
