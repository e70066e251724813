"""Shared test helpers (importable as ``testkit``: pytest puts ``tests/`` on ``sys.path`` through the
``pythonpath`` setting in pyproject.toml). Nothing here ships in the package.

- `fakes`: scripted LLM answers and a stand-in training run (unit tests of logic only).
- `llm`: the three answer schemas, a request builder and a strict validity check for the LLM backends.
- `recommend`: a tiny trained run and the real recommendation server on 127.0.0.1.
- `fixtures`: pytest fixtures shared across test folders (registered in tests/conftest.py).
- `tables`: small hand-made tables for the dataset-layer tests.
"""
