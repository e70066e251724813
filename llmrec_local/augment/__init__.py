"""LLM augmentation stage: candidates, implicit-feedback pairs, item attributes, user profiles.

Public API: `augment` (run the jobs), `AugmentConfig` (the ``[augment]`` recipe table), `merge` (combine shards),
and the importers in `imports`. CLI: ``python -m llmrec_local.augment --help``.
"""

from .config import AugmentConfig, JobSampling
from .shard import merge
from .stage import augment

__all__ = ["AugmentConfig", "JobSampling", "augment", "merge"]
