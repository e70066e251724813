"""Enters llmrec_local's compatibility layer in Python subprocesses started by vLLM (model inspection, engine core,
API server workers), which import transformers -> torchvision without running our code.

Put on ``PYTHONPATH`` by `llmrec_local.compat.propagate_to_subprocesses`. Importing the package installs the
torchvision import hook (`llmrec_local.compat.enter`); a child that never imports torchvision pays only for that
import, which loads nothing heavy.
"""

import llmrec_local  # noqa: F401
