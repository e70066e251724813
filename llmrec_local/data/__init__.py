"""Dataset layer: loaders for LLMRec's release, MovieLens and generic tables; the ``prepare`` stage; ``Dataset``.

``llmrec_local.data.arrays`` (numpy only) must stay importable on hosts without polars (a GPU machine that only
trains and evaluates), so the polars-based names are skipped there instead of failing the package import.
"""

from __future__ import annotations

try:
    from .dataset import Dataset
    from .prepare import PrepareConfig, prepare
    from .synthetic import generate_synthetic
except ModuleNotFoundError as exc:  # an arrays-only host: keep `from llmrec_local.data.arrays import ...` working
    if exc.name not in ("polars", "tqdm", "scipy"):
        raise

__all__ = ["Dataset", "PrepareConfig", "prepare", "generate_synthetic"]
