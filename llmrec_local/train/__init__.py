"""Training: config, vectorised sampling, side inputs and the ``train`` stage entry point."""

from .config import ABLATIONS, ModelConfig, TrainConfig, ablation_overrides, train_config_hash
from .sampling import TripleSampler
from .side import SideArrays, SideInputs, resolve_side
from .stage import make_optimizer, train

__all__ = [
    "ABLATIONS", "ModelConfig", "TrainConfig", "ablation_overrides", "train_config_hash", "TripleSampler",
    "SideArrays", "SideInputs", "resolve_side", "make_optimizer", "train",
]
