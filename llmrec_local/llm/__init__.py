"""Local LLM layer: backends (vLLM offline, OpenAI-compatible HTTP, transformers), model registry, smoke model.

Importing this package is cheap: the backends import vllm / transformers / httpx only when constructed, and the
names below that live in heavier modules are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import GenRequest, GenResult, LLMBackend, Sampling, UsageStats

_LAZY = {
    "make_backend": "factory", "resolve_kind": "factory", "vllm_usable": "factory",
    "resolve_model": "registry", "load_registry": "registry", "ResolvedModel": "registry", "ModelEntry": "registry",
    "build_smoke_model": "smoke", "load_prompt_tokenizer": "tokens",
    "VLLMBackend": "vllm_backend", "OpenAIBackend": "openai_backend", "TransformersBackend": "hf_backend",
}

__all__ = ["GenRequest", "GenResult", "LLMBackend", "Sampling", "UsageStats", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
