"""llmrec_local: LLMRec (WSDM 2024) with local open models, offline.

Importing the package needs only the core dependencies (numpy, polars); torch, vLLM, transformers,
sentence-transformers and open_clip are imported lazily by the one module that uses each.
"""

__version__ = "0.1.0"
