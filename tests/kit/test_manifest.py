"""`kit verify`: every missing, extra and changed file is named; a clean kit passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_local.errors import DataError
from llmrec_local.kit.__main__ import main
from llmrec_local.kit.manifest import read_manifest, verify_kit, write_manifest


def _kit(root: Path) -> Path:
    (root / "wheels").mkdir(parents=True)
    (root / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    (root / "models" / "m").mkdir(parents=True)
    (root / "models" / "m" / "model.safetensors").write_bytes(bytes(range(256)))
    (root / "install.sh").write_text("#!/bin/sh\n")
    write_manifest(root)
    return root


def test_clean_kit_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit = _kit(tmp_path / "kit")
    assert verify_kit(kit) == []
    assert [e.path for e in read_manifest(kit)] == ["install.sh", "models/m/model.safetensors",
                                                    "wheels/a-1.0-py3-none-any.whl"]
    assert main(["verify", str(kit)]) == 0
    assert "OK, 3 files" in capsys.readouterr().out


def test_changed_removed_added_are_three_named_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit = _kit(tmp_path / "kit")
    weights = kit / "models" / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF  # one byte, same size: only the sha256 can tell
    weights.write_bytes(bytes(data))
    (kit / "wheels" / "a-1.0-py3-none-any.whl").unlink()
    (kit / "models" / "m" / "stray.bin").write_bytes(b"x")
    findings = verify_kit(kit)
    assert [(f.kind, f.path) for f in findings] == [("changed", "models/m/model.safetensors"),
                                                   ("extra", "models/m/stray.bin"),
                                                   ("missing", "wheels/a-1.0-py3-none-any.whl")]
    assert findings[0].detail == "sha256 differs"
    assert main(["verify", str(kit)]) == 1
    out = capsys.readouterr().out
    for path in ("models/m/model.safetensors", "models/m/stray.bin", "wheels/a-1.0-py3-none-any.whl"):
        assert path in out
    assert "3 problem(s)" in out


def test_size_change_and_bad_manifests(tmp_path: Path) -> None:
    kit = _kit(tmp_path / "kit")
    (kit / "install.sh").write_text("#!/bin/sh\necho changed\n")
    assert [str(f) for f in verify_kit(kit)] == ["changed: install.sh (size 23 != 10)"]
    (kit / "MANIFEST").unlink()
    with pytest.raises(DataError, match="not a finished kit"):
        verify_kit(kit)
    (kit / "MANIFEST").write_text("# llmrec_local kit manifest 1\nnot a line\n")
    with pytest.raises(DataError, match=r"MANIFEST:2: 'not a line'"):
        verify_kit(kit)
