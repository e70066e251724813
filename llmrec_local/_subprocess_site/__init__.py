"""Holds the sitecustomize.py put on PYTHONPATH for vLLM subprocesses (see that file)."""
