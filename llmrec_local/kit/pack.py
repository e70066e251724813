"""Pack an offline kit on a connected machine (see `llmrec_local.kit` and docs/air-gapped.md).

Layout of a kit::

    KIT/
      install.sh            bash install.sh [VENV]: pip --no-index --find-links wheels/ only, then `kit verify`
      kit.json              what was packed: environment, target Python and platform, lock, models, CUDA build
      lock/<env>-py<XY>.txt the hashed lock the wheelhouse was downloaded from
      wheels/               every locked wheel for the target (pip download --platform/--python-version/
                            --only-binary) and the project itself as a wheel
      models/<folder>/      each named model folder, with a SHA256SUMS of its files (checked by the registry on load)
      recipes/              the recipes and the model registry (models.toml)
      data/ml-latest-small/ the bundled dataset with its README (licence)
      MANIFEST              sha256 and size of every other file (written last)
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, DataError
from ..hashing import cached_file_sha256s, weight_files_hash
from .cuda import cuda_build
from .manifest import MANIFEST, write_manifest
from .torch_source import choose

log = logging.getLogger(__name__)

ENVS = ("cpu", "cuda")
#: glibc the locks are resolved for (scripts/lock.sh, --python-platform x86_64-manylinux_2_31)
TARGET_GLIBC_MINOR = 31
#: files and folders of a source checkout that build the project's wheel
_PROJECT_SOURCES = ("pyproject.toml", "README.md", "llmrec_local", "serving")
#: PyPI builds that break imports beside the CPU torch; left out of the cpu lock, removed if present
_CPU_REMOVE = ("torchaudio", "torchcodec", "triton")

_INSTALL_SH = """#!/usr/bin/env bash
# Install llmrec_local from this kit with no network: pip reads wheels/ only (--no-index --find-links), every wheel
# checked against the lock's sha256, then `python -m llmrec_local.kit verify` checks every file of the kit.
#   bash install.sh [VENV]      default VENV: llmrec-venv beside the kit; PYTHON=python{python} picks the interpreter
# Afterwards: source VENV/bin/activate (sets the offline variables and this kit's models and registry), then
#   python -m llmrec_local.doctor
set -euo pipefail
KIT=$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)
VENV=${{1:-$(dirname "$KIT")/llmrec-venv}}
PY=${{PYTHON:-python{python}}}
command -v "$PY" >/dev/null 2>&1 || PY=python3
HAVE=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$HAVE" != "{python}" ]; then
  echo "error: this kit is for Python {python} but $PY is Python $HAVE; run with PYTHON=/path/to/python{python}," \\
       "or pack a kit for $HAVE (python -m llmrec_local.kit pack --python $HAVE ...)" >&2
  exit 2
fi
# The kit is the only source: pip's own configuration (indexes, find-links, constraints) must not add any.
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT PIP_REQUIRE_VIRTUALENV
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --no-index --find-links "$KIT/wheels")
"${{PIP[@]}}" --require-hashes --no-deps -r "$KIT/lock/{lock}"
"${{PIP[@]}}" --no-deps "$KIT/wheels/{project_wheel}"
{remove}cat >> "$VENV/bin/activate" <<ENV
# llmrec_local offline kit $KIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export LLMREC_MODELS_DIR="$KIT/models" LLMREC_MODEL_REGISTRY="$KIT/recipes/models.toml"
ENV
"$VENV/bin/python" -m llmrec_local.kit verify "$KIT"
echo "installed into $VENV; next: source $VENV/bin/activate && python -m llmrec_local.doctor (run recipes from a work folder outside the kit)"
"""


@dataclass(frozen=True)
class PackResult:
    """What `pack` wrote: the kit folder, bytes per top-level part, the torch decision line and the wall time."""

    kit: Path
    sizes: dict[str, int]
    torch_line: str
    wall_s: float

    @property
    def total_bytes(self) -> int:
        """Size of the whole kit."""
        return sum(self.sizes.values())


def repo_root() -> Path:
    """The source checkout this package runs from (packing needs its locks/, recipes/ and data/).

    Raises:
        ConfigError: the package is an installed copy without the repository.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "locks").is_dir():
        raise ConfigError(f"kit pack needs the source checkout (pyproject.toml and locks/ beside llmrec_local/), "
                          f"not found at {root}; run it from a clone of the repository")
    return root


def target_pip_args(python: str) -> list[str]:
    """pip arguments that select wheels for CPython `python` ("3.12") on Linux x86_64 with glibc >= 2.31."""
    tag = python.replace(".", "")
    # pip does not expand a manylinux_2_X tag to older ones, so every glibc level is listed.
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(TARGET_GLIBC_MINOR, 16, -1)]
    args = [arg for plat in [*platforms, "manylinux2014_x86_64"] for arg in ("--platform", plat)]
    return [*args, "--python-version", python, "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3",
            "--abi", "none", "--only-binary", ":all:"]


def lock_path(env: str, python: str, root: Path) -> Path:
    """``locks/<env>-py<XY>.txt``.

    Raises:
        ConfigError: unknown environment or Python version format, or no lock for this pair.
    """
    if env not in ENVS:
        raise ConfigError(f"--env {env!r} is not one of {list(ENVS)}")
    parts = python.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"--python {python!r} is not MAJOR.MINOR such as 3.12")
    path = root / "locks" / f"{env}-py{''.join(parts)}.txt"
    if not path.is_file():
        have = ", ".join(sorted(p.name for p in (root / "locks").glob("*-py*.txt"))) or "none"
        raise ConfigError(f"no lock {path.relative_to(root)} (have: {have}); make it with `bash scripts/lock.sh {env} "
                          f"{python}` on a machine whose pip reaches the wheels (PyTorch's CPU index for cpu)")
    return path


def _run(cmd: Sequence[str], what: str) -> None:
    log.info("%s: %s", what, " ".join(cmd))
    done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        errors = [ln for ln in done.stderr.splitlines() if not ln.startswith("WARNING")]
        raise DataError(f"{what} failed (exit {done.returncode}): {' | '.join(errors[-5:])}\ncommand: {' '.join(cmd)}")


def _project_wheel(root: Path, dest: Path) -> str:
    """Build the project's wheel from a copy of its sources (the build must not write into the checkout)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in _PROJECT_SOURCES:
            path = root / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif path.is_file():
                shutil.copy2(path, src / name)
        before = set(dest.glob("*.whl"))
        # no build isolation: setuptools is in every lock, and a build environment would need an index
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dest),
              str(src)], "building the project wheel")
    built = sorted(set(dest.glob("*.whl")) - before)
    if len(built) != 1:
        raise DataError(f"building the project wheel produced {[p.name for p in built]}, expected one wheel")
    return built[0].name


def _copy_models(aliases: Sequence[str], models_dir: Path | None, dest: Path) -> dict[str, dict[str, str]]:
    """Copy each alias's resolved folder to ``dest/<registry folder>`` and write its SHA256SUMS."""
    from ..llm.registry import MANIFEST_NAME, load_registry

    registry = load_registry()
    packed: dict[str, dict[str, str]] = {}
    for alias, folder in model_folders(aliases, models_dir).items():
        entry = registry[alias]
        if not folder.is_dir():
            raise ConfigError(f"model {alias!r} resolved to the file {folder}; a kit carries model folders")
        target = dest / entry.folder
        shutil.copytree(folder, target, symlinks=False,
                        ignore=shutil.ignore_patterns(MANIFEST_NAME, "__pycache__", ".cache"))
        files = sorted(p for p in target.rglob("*") if p.is_file())
        # digests of the copies (fresh files: the cache only remembers them for the registry's next check)
        digests = cached_file_sha256s(files)
        (target / MANIFEST_NAME).write_text("".join(f"{digests[p.resolve()]}  {p.relative_to(target).as_posix()}\n"
                                                    for p in files))
        weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".gguf")]
        packed[alias] = {"folder": entry.folder, "kind": entry.kind,
                         "weights_hash": weight_files_hash(weights, root=target)}
        log.info("model %s: %d files from %s", alias, len(files), folder)
    return packed


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def check_pack(env: str, python: str, out: Path, root: Path) -> Path:
    """The lock file `pack` installs from; ConfigError for a bad environment or Python, or a non-empty `out`."""
    lock = lock_path(env, python, root)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty; give a new folder (a kit is written whole)")
    return lock


def model_folders(aliases: Sequence[str], models_dir: Path | None) -> dict[str, Path]:
    """alias -> the local folder `pack` would copy (ConfigError for an unknown alias, ModelNotFoundError for a
    model on no models directory); nothing is read beyond the registry's own checks."""
    from ..llm.registry import load_registry, resolve_model

    registry = load_registry()
    unknown = [alias for alias in aliases if alias not in registry]
    if unknown:
        raise ConfigError(f"--models: {unknown} are not aliases of the model registry (known: "
                          f"{', '.join(sorted(registry))}); add them to recipes/models.toml")
    return {alias: resolve_model(alias, kind=registry[alias].kind, models_dir=models_dir).path for alias in aliases}


def pack(env: str, python: str, out: Path, models: Sequence[str] = (), models_dir: Path | None = None) -> PackResult:
    """Write a kit for `env` ("cpu"/"cuda") and CPython `python` ("3.12") into the empty or new folder `out`.

    Raises:
        ConfigError: bad arguments (environment, Python, unknown alias, non-empty output folder).
        DataError: a download or build failed (the message carries pip's last lines and the command).
        ModelNotFoundError: a named model is not in any models directory.
    """
    start = time.perf_counter()
    root = repo_root()
    lock = check_pack(env, python, out, root)
    wheels = out / "wheels"
    wheels.mkdir(parents=True)
    (out / "lock").mkdir()
    shutil.copy2(lock, out / "lock" / lock.name)

    target = target_pip_args(python)
    torch_args: list[str] = []
    torch_line = "torch: from the lock's own index (PyPI)"
    if env == "cpu":
        source = choose(sys.executable, lock, probe_args=target)
        torch_args, torch_line = source.pip_args(), source.line()
    log.info("%s", torch_line)
    _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "--dest", str(wheels),
          *target, *torch_args, "-r", str(lock)], f"downloading the {env} wheels for Python {python}")
    project_wheel = _project_wheel(root, wheels)

    packed_models = _copy_models(models, models_dir, out / "models") if models else {}
    (out / "models").mkdir(exist_ok=True)
    shutil.copytree(root / "recipes", out / "recipes", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "data" / "ml-latest-small", out / "data" / "ml-latest-small")

    cuda = cuda_build(lock)
    remove = ""
    if env == "cpu":
        remove = (f'"$VENV/bin/python" -m pip uninstall -q -y {" ".join(_CPU_REMOVE)} >/dev/null 2>&1 || true\n')
    install = _INSTALL_SH.format(python=python, lock=lock.name, project_wheel=project_wheel, remove=remove)
    (out / "install.sh").write_text(install)
    (out / "install.sh").chmod(0o755)
    info = {
        "format": 1, "env": env, "python": python, "platform": f"linux x86_64, glibc >= 2.{TARGET_GLIBC_MINOR}",
        "lock": f"lock/{lock.name}", "project_wheel": f"wheels/{project_wheel}", "llmrec_local": __version__,
        "models": packed_models, "torch_source": torch_line,
        "cuda": None if cuda is None else {"runtime": cuda.runtime, "cuda": cuda.cuda,
                                           "min_driver": cuda.min_driver},
        "packed_on": {"host_python": platform.python_version(), "machine": platform.machine(),
                      "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    (out / "kit.json").write_text(json.dumps(info, indent=2) + "\n")
    write_manifest(out)
    sizes = {p.name: _tree_bytes(p) for p in sorted(out.iterdir()) if p.name != MANIFEST}
    return PackResult(out, sizes, torch_line, time.perf_counter() - start)
