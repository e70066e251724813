"""Local LLM layer: backends (vLLM offline, OpenAI-compatible HTTP, transformers), model registry, smoke model."""

from .base import FakeBackend, GenRequest, GenResult, LLMBackend, Sampling, UsageStats

__all__ = ["FakeBackend", "GenRequest", "GenResult", "LLMBackend", "Sampling", "UsageStats"]
