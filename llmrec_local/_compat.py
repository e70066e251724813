"""Environment compatibility shims, applied only by the modules that import the affected libraries.

torchvision from PyPI is built against CUDA torch; beside the CPU wheel `torch 2.13.0+cpu` its import fails with
``RuntimeError: operator torchvision::nms does not exist`` while registering fake kernels for its C++ ops.
transformers, open_clip and vLLM all import torchvision when it is installed, so that error would break every heavy
backend. Defining the missing op *schemas* (not kernels) under the ``torchvision`` namespace lets the import finish;
only ``torchvision.ops.nms``-style C++ ops stay unusable, and nothing here needs them. Where torchvision imports
natively (matching torch build, GPU hosts) this is a no-op.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Literal

TorchvisionState = Literal["absent", "native", "shimmed"]

_state: TorchvisionState | None = None
_library = None  # keeps the torch.library.Library alive: the op schemas vanish when it is collected


def ensure_torchvision_importable() -> TorchvisionState:
    """Make ``import torchvision`` succeed (or confirm it is absent). Call before importing transformers,
    sentence_transformers, open_clip or vllm. Idempotent."""
    global _state, _library
    if _state is not None:
        return _state
    if importlib.util.find_spec("torchvision") is None:
        _state = "absent"
        return _state
    try:
        import torchvision  # noqa: F401

        _state = "native"
        return _state
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401,F811

    _state = "shimmed"
    return _state
