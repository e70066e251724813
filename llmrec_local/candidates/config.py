"""`CandidatesConfig`: the ``[candidates]`` table of a recipe (K and the base model whose ranking gives them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import ADDED_SETTING
from ..train.config import ModelConfig, TrainConfig


def _lightgcn() -> ModelConfig:
    return ModelConfig(name="lightgcn")


@dataclass(frozen=True)
class CandidatesConfig:
    """Settings of the candidates stage: the top-`k` unseen items per user of a base model trained for the purpose.

    The base model is trained by the pipeline runner (into ``runs/_candidates_base``) with `train_config`; its seed
    is not a setting here: like every run's, it comes from the recipe (``recipe.seeds``, the first one). Recipe
    tables are read by `llmrec_local.run.config.candidates_config` (LightGCN unless ``model.name`` says otherwise).

    Attributes:
        k: candidates per user shown to the pair job (|C| = 10 in the paper).
        model: the base model (LightGCN by default; any `ModelConfig`).
        epochs: the base model's maximum training epochs (the one place they are set).
        patience, eval_every, batch_size, lr, selection: its training loop (`TrainConfig` meanings and defaults;
            selection "last" trains a base model on a dataset without validation pairs).
        device, progress: runtime only (not part of any config hash).
    """

    k: int = 10
    model: ModelConfig = field(default_factory=_lightgcn)
    epochs: int = 20
    patience: int = 10
    eval_every: int = 1
    batch_size: int = 1024
    lr: float = 1e-3
    selection: Literal["auto", "val", "last"] = field(default="auto", metadata=ADDED_SETTING)
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.k <= 100:
            raise ValueError(f"k must be in [2, 100] (a pair needs two candidates), got {self.k}")
        self.train_config(seed=0)  # the training settings' own range checks, at load time

    def train_config(self, seed: int) -> TrainConfig:
        """The base model's training config for `seed` (every other setting at the `TrainConfig` default)."""
        return TrainConfig(model=self.model, seed=seed, epochs=self.epochs, patience=self.patience,
                           eval_every=self.eval_every, batch_size=self.batch_size, lr=self.lr,
                           selection=self.selection, device=self.device, progress=self.progress)
