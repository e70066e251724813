"""The ``prepare`` stage: a raw source (LLMRec release, MovieLens, generic tables) -> the dataset artifact.

``config`` holds `PrepareConfig` (the ``[prepare]`` recipe table), ``stage`` the entry function `prepare`,
``__main__`` the CLI (``python -m llmrec_local.prepare``).
"""
