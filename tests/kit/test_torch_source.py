"""Where torch comes from: the pure decision, the lock's pin, and a real pip probe against local wheel folders."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from llmrec_local.kit.torch_source import (
    CONFIGURED,
    DEFAULT_REQUIREMENT,
    PYTORCH_CPU_INDEX,
    ProbeResult,
    decide,
    main,
    probe_configured,
    torch_requirement,
)

REQ = "torch==2.13.0+cpu"


def test_configured_sources_win_when_pip_resolves() -> None:
    source = decide(REQ, None, ProbeResult(True, location="file:///opt/wheels/torch.whl"))
    assert source.origin == "configured" and source.extra_index is None and source.pip_args() == []
    assert "file:///opt/wheels/torch.whl" in source.line() and source.line().count("\n") == 0


def test_pytorch_index_when_configured_sources_fail() -> None:
    source = decide(REQ, "", ProbeResult(False, detail="ERROR: No matching distribution found for " + REQ))
    assert source.origin == "pytorch-index"
    assert source.pip_args() == ["--extra-index-url", PYTORCH_CPU_INDEX]
    assert "No matching distribution" in source.line() and "LLMREC_TORCH_INDEX" in source.line()
    assert source.uv_args()[:2] == ["--extra-index-url", PYTORCH_CPU_INDEX]


def test_override_skips_the_probe() -> None:
    mirror = "https://mirror.lab.example/pytorch-cpu"
    source = decide(REQ, mirror, None)
    assert (source.origin, source.extra_index) == ("override", mirror)
    assert decide(REQ, CONFIGURED, None).pip_args() == []
    with pytest.raises(ValueError, match="not a URL.*configured"):
        decide(REQ, "download.pytorch.org", None)
    with pytest.raises(ValueError, match="needs a probe"):
        decide(REQ, None, None)


def test_requirement_from_lock(tmp_path: Path) -> None:
    lock = tmp_path / "cpu-py311.txt"
    lock.write_text("numpy==2.3.5 \\\n    --hash=sha256:aa\ntorch==2.13.0+cpu \\\n    --hash=sha256:bb\n")
    assert torch_requirement(lock) == REQ
    assert torch_requirement(None) == DEFAULT_REQUIREMENT
    lock.write_text("numpy==2.3.5\n")
    with pytest.raises(ValueError, match="pins no torch"):
        torch_requirement(lock)


def test_checked_in_cpu_lock_pins_the_cpu_build() -> None:
    lock = Path(__file__).resolve().parents[2] / "locks" / "cpu-py311.txt"
    assert torch_requirement(lock) == REQ


def _fake_torch_wheel(folder: Path, version: str) -> Path:
    """A minimal valid wheel named torch (metadata only) so pip can resolve it offline."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"torch-{version}-py3-none-any.whl"
    dist = f"torch-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return path


def _isolate_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's pip configuration (local wheel folders, mirrors) must not answer for the test's folder."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(name, raising=False)


def test_real_pip_probe_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip itself is asked, with nothing but a local folder as source (no network)."""
    _isolate_pip(monkeypatch)
    _fake_torch_wheel(tmp_path / "with", "2.13.0+cpu")
    _fake_torch_wheel(tmp_path / "without", "2.13.0")  # the PyPI-style CUDA build number: must not match +cpu
    found = probe_configured(sys.executable, REQ, extra_args=["--no-index", "--find-links", str(tmp_path / "with")])
    assert found.resolved and found.location.endswith("torch-2.13.0%2Bcpu-py3-none-any.whl")
    missing = probe_configured(sys.executable, REQ,
                               extra_args=["--no-index", "--find-links", str(tmp_path / "without")])
    assert not missing.resolved and "No matching distribution" in missing.detail
    assert decide(REQ, None, missing).origin == "pytorch-index"


def test_probe_timeout_counts_as_unresolvable() -> None:
    slow = probe_configured(sys.executable, REQ, extra_args=["--no-index"], timeout_s=0.01)
    assert not slow.resolved and "did not answer" in slow.detail


def test_cli_prints_one_decision_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LLMREC_TORCH_INDEX", "https://mirror.lab.example/cpu")
    assert main(["--prefix", "[setup] "]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["--extra-index-url", "https://mirror.lab.example/cpu"]
    assert err.count("\n") == 1 and err.startswith("[setup] torch: ") and "override" in err
    monkeypatch.setenv("LLMREC_TORCH_INDEX", "nonsense")
    assert main([]) == 2
    assert "is not a URL" in capsys.readouterr().err
