"""Session-wide test setup: offline mode, hermetic caches, the torchvision shim, few threads."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from llmrec_local._compat import ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()
