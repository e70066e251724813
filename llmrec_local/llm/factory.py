"""Build an `LLMBackend` from a backend kind and a model alias/path (the single place that picks a backend).

Registry settings (``recipes/models.toml``) are recommendations: each backend gets the ones it understands, and the
caller's `options` override them. Unknown `options` are errors, so a typo in a recipe fails loudly.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Literal

from ..compat import vllm_usable
from ..errors import ConfigError
from .base import LLMBackend

log = logging.getLogger(__name__)

BackendKind = Literal["vllm", "openai", "transformers", "auto"]
BACKEND_KINDS: tuple[str, ...] = ("vllm", "openai", "transformers", "auto")

def resolve_kind(kind: str) -> str:
    """Map "auto" to "vllm" when vLLM is usable here, else "transformers"."""
    if kind not in BACKEND_KINDS:
        raise ConfigError(f"backend {kind!r} is not one of {list(BACKEND_KINDS)}")
    if kind != "auto":
        return kind
    return "vllm" if vllm_usable() else "transformers"


def _accepted(cls: type, settings: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in settings.items() if k in params}


def make_backend(kind: BackendKind, model: str, *, models_dir: str | Path | None = None,
                 base_url: str | None = None, **options: Any) -> LLMBackend:
    """Create a backend.

    Args:
        kind: "vllm" (offline engine), "openai" (HTTP to a running server), "transformers", or "auto"
            (vllm when usable here, else transformers).
        model: registry alias or local folder; for "openai" the served model name (our server serves the alias)
            and resolved locally only when it is a path or a registered alias present on disk.
        models_dir: extra models directory searched first (``--models-dir``).
        base_url: server URL for "openai", e.g. ``http://127.0.0.1:8000/v1``.
        options: backend constructor arguments (override the registry's recommended settings).

    Raises:
        ConfigError: unknown kind or option, or "openai" without `base_url`.
        ModelNotFoundError: the model is not on disk (vllm / transformers).
    """
    from .registry import resolve_model

    resolved_kind = resolve_kind(kind)
    if resolved_kind == "openai":
        from .openai_backend import OpenAIBackend

        if not base_url:
            raise ConfigError("backend 'openai' needs base_url (e.g. --base-url http://127.0.0.1:8000/v1)")
        _check_options(OpenAIBackend, options)
        return OpenAIBackend(base_url, model, **options)

    if base_url:
        raise ConfigError(f"base_url is only used by the 'openai' backend, not {resolved_kind!r}")
    resolved = resolve_model(model, kind="llm", models_dir=models_dir)
    if resolved_kind == "vllm":
        from .vllm_backend import VLLMBackend as cls
    else:
        from .hf_backend import TransformersBackend as cls  # type: ignore[assignment]
    _check_options(cls, options)
    settings = _accepted(cls, resolved.settings)
    merged = {**settings, **options}
    merged.setdefault("model_id", resolved.model_id)
    log.info("backend %s for %s (%s) with %s", resolved_kind, resolved.alias, resolved.path, merged)
    try:
        return cls(resolved.path, **merged)
    except TypeError as exc:  # a wrong value type that the signature check could not see
        raise ConfigError(f"could not build the {resolved_kind} backend with {merged}: {exc}") from exc


def _check_options(cls: type, options: dict[str, Any]) -> None:
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "model", "base_url")]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for {cls.__name__}; valid: {params}")
