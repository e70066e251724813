"""Torchvision shim for Python subprocesses started by vLLM (model inspection, engine core, API server workers).

Only put on ``PYTHONPATH`` by `llmrec_local.llm.vllm_backend.propagate_torchvision_shim` when the parent process
needed `llmrec_local._compat.ensure_torchvision_importable` to shim torchvision: children of the same environment
hit the same ``operator torchvision::nms does not exist`` error, and vLLM spawns them without running our code.

The first ``import torchvision`` in the child triggers the hook, which defines the two op schemas torchvision's
fake-kernel registration expects (as the parent's shim does) and then lets the normal import proceed. A child that
never imports torchvision pays nothing.
"""

import sys

_library = None  # keeps the op schemas alive for the life of the process


class _TorchvisionSchemaHook:
    def find_spec(self, name, path=None, target=None):
        global _library
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        import torch

        _library = torch.library.Library("torchvision", "DEF")
        _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        return None  # the regular finders load torchvision, now with its schemas in place


sys.meta_path.insert(0, _TorchvisionSchemaHook())
