"""The GPU container files cannot be built here (no Docker engine, no Apptainer): check what they must say.

Both build from a kit with no network, state the CUDA build and minimum driver the cuda lock implies, install with
the kit's install.sh only and run the doctor as their health check.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmrec_local.kit.cuda import cuda_build

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "containers" / "Dockerfile", ROOT / "containers" / "llmrec.def"]


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions with continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [ln.strip() for ln in joined.splitlines() if ln.strip()]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_states_the_cuda_lock_figures(path: Path) -> None:
    build = cuda_build(ROOT / "locks" / "cuda-py312.txt")
    assert build is not None
    text = path.read_text()
    assert f"CUDA {build.cuda}" in text and f"nvidia-cuda-runtime {build.runtime}" in text
    assert build.min_driver in text and "locks/cuda-py312.txt" in text
    torch = re.search(r"^torch==(\S+)", (ROOT / "locks" / "cuda-py312.txt").read_text(), re.MULTILINE)
    vllm = re.search(r"^vllm==(\S+)", (ROOT / "locks" / "cuda-py312.txt").read_text(), re.MULTILINE)
    assert torch and vllm and f"torch {torch.group(1)}" in text and f"vllm {vllm.group(1)}" in text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_network_at_build(path: Path) -> None:
    body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
    for word in ("curl ", "wget ", "apt-get", "pip install", "pip3 install", "git clone", "http://", "https://"):
        assert word not in body, f"{path.name} fetches something at build time ({word.strip()})"
    assert "PYTHON=python3.12 bash /opt/llmrec/kit/install.sh /opt/llmrec/venv" in body
    assert "llmrec_local.doctor" in body


def test_dockerfile_lint() -> None:
    lines = _instructions(FILES[0].read_text())
    keywords = [ln.split()[0] for ln in lines]
    known = {"ARG", "FROM", "COPY", "RUN", "ENV", "LABEL", "WORKDIR", "HEALTHCHECK", "CMD"}
    assert set(keywords) <= known and keywords.index("ARG") < keywords.index("FROM")
    assert keywords.count("FROM") == 1 and keywords.count("CMD") == 1 and keywords.count("HEALTHCHECK") == 1
    health = next(ln for ln in lines if ln.startswith("HEALTHCHECK"))
    assert re.search(r'CMD \["python", "-m", "llmrec_local.doctor"\]$', health)  # exec form: exit 1 = unhealthy
    env = " ".join(ln for ln in lines if ln.startswith("ENV"))
    for var in ("HF_HUB_OFFLINE=1", "LLMREC_MODELS_DIR=/opt/llmrec/kit/models", 'NVIDIA_REQUIRE_CUDA="cuda>=13.0',
                "PATH=/opt/llmrec/venv/bin:$PATH"):
        assert var in env
    assert "docker build --network=none" in FILES[0].read_text()


def test_apptainer_definition_lint() -> None:
    text = FILES[1].read_text()
    header = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][:2]
    assert header == ["Bootstrap: docker-archive", "From: python-3.12-bookworm.tar"]
    sections = re.findall(r"^%(\w+)", text, re.MULTILINE)
    assert sections == ["files", "post", "environment", "labels", "test", "runscript"]
    test_section = text.split("%test", 1)[1].split("%runscript", 1)[0]
    assert "python -m llmrec_local.doctor" in test_section
