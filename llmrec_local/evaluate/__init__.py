"""Full-ranking evaluation: metrics on top-k tensors, chunked ranking, the ``evaluate`` stage, significance tests.

``evaluate`` is imported lazily so that ``llmrec_local.evaluate.metrics`` stays dependency-light.
"""

from __future__ import annotations

from typing import Any

from .metrics import DEFAULT_KS, metrics_from_hits, paper_ndcg
from .ranking import PairIndex, rank_and_score

__all__ = ["DEFAULT_KS", "metrics_from_hits", "paper_ndcg", "PairIndex", "rank_and_score", "evaluate"]


def evaluate(*args: Any, **kwargs: Any) -> dict:
    """See :func:`llmrec_local.evaluate.stage.evaluate`."""
    from .stage import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
