"""The project's exception hierarchy.

Every error raised at a boundary (config load, data load, stage entry, model resolution) is one of these, and its
message names the offending value and says how to fix it. Catch `LLMRecError` to handle all of them.
"""

from __future__ import annotations


class LLMRecError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(LLMRecError):
    """A recipe, a CLI override or a stage argument is invalid (unknown key, wrong type, out of range)."""


class DataError(LLMRecError):
    """Input data is missing, malformed or inconsistent (file, column, id, type)."""


class ArtifactError(LLMRecError):
    """An artifact folder is incomplete, of another schema version, or was built from another config."""


class ModelNotFoundError(LLMRecError):
    """A local model (LLM, text or image encoder) could not be resolved to a complete folder on disk."""


class BackendError(LLMRecError):
    """An LLM backend failed in a way that retrying will not fix (server down after retries, engine crash)."""


class AugmentError(LLMRecError):
    """An augmentation job failed as a whole (e.g. failure rate above the configured threshold)."""
