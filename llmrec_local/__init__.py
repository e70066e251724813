"""llmrec_local: LLMRec (WSDM 2024) with local open models, offline.

Importing the package needs only the core dependencies (numpy, polars); torch, vLLM, transformers,
sentence-transformers and open_clip are imported lazily by the one module that uses each. Importing it also enters
the compatibility layer (`llmrec_local.compat.enter`: offline mode, the torchvision import hook), so every entry
point, test session and notebook runs with the same environment.
"""

from . import compat

__version__ = "0.1.0"

compat.enter()
