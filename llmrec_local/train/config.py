"""Training configuration: the ``[train]`` table of a recipe (with a nested ``[train.model]`` table).

Settings whose right value depends on the model variant default to ``None`` = "the variant's default", resolved in
one place (:data:`llmrec_local.models.VARIANT_DEFAULTS`): pruning rule and rate, regulariser weight, weight decay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ADDED_SETTING, hash_dict
from ..errors import ConfigError
from ..hashing import stable_hash


@dataclass(frozen=True)
class ModelConfig:
    """Model architecture and loss settings (names follow the original's flags where one exists).

    name: mf | lightgcn | sgl | simgcl | llmrec. variant (llmrec only): faithful (the released code, quirks included)
    | fixed. dim: embedding size d. n_layers: LightGCN layers (also SGL's and SimGCL's encoder, >= 1 there).
    id_layers: LLMRec ID propagation layers (len(weight_size)).
    model_cat_rate / user_cat_rate / item_cat_rate: LLMRec fusion weights for image+text / profile / attributes.
    prune_drop_rate (omega_4), prune_keep (hardest|easiest), prune_scope (all|augmented): loss pruning; None =
    variant default (faithful 0.71 hardest over all triples, fixed 0.2 easiest over the LLM/noise triples only). reg_weight: None = default (mf/lightgcn 1e-4, faithful 1e-5
    inverse term, fixed 1e-4 L2). mm_mf_rate, aug_mf_rate, feat_reg_decay: weights of the auxiliary losses.
    mask_rate, mae_weight, sce_gamma: MAE of the fixed variant (off when mask_rate or mae_weight is 0).
    cl_weight (lambda, >= 0; 0 = no contrastive term) and cl_temp (tau, > 0): the InfoNCE of SGL and SimGCL
    (papers' defaults 0.1 and 0.2; SimGCL tunes lambda per dataset). edge_drop_rate (rho, [0, 1)): SGL-ED's edge
    dropout (0.1). noise_eps (eps, >= 0): the length of SimGCL's per-layer noise (0.1).
    init_from (MF, LightGCN, SGL, SimGCL): start the item table from the run's item text vectors ("item_text") and/or
    the user table from its user text vectors ("user_text": the side input user_text or user_profiles), each reduced to
    `dim` by a seeded fixed Gaussian projection and scaled to the default init's std 0.1
    (`llmrec_local.train.init_from`); entities without a text keep the random init. () = random init (default).
    """

    name: Literal["mf", "lightgcn", "sgl", "simgcl", "llmrec"] = "llmrec"
    variant: Literal["faithful", "fixed"] = "fixed"
    dim: int = 64
    n_layers: int = 3
    id_layers: int = 2
    model_cat_rate: float = 0.02
    user_cat_rate: float = 2.8
    item_cat_rate: float = 0.005
    prune_drop_rate: float | None = None
    prune_keep: Literal["hardest", "easiest"] | None = None
    prune_scope: Literal["all", "augmented"] | None = None
    reg_weight: float | None = None
    mm_mf_rate: float = 1e-4
    aug_mf_rate: float = 0.012
    feat_reg_decay: float = 1e-5
    mask_rate: float = 0.0
    mae_weight: float = 0.0
    sce_gamma: float = 2.0
    cl_weight: float = field(default=0.1, metadata=ADDED_SETTING)
    cl_temp: float = field(default=0.2, metadata=ADDED_SETTING)
    edge_drop_rate: float = field(default=0.1, metadata=ADDED_SETTING)
    noise_eps: float = field(default=0.1, metadata=ADDED_SETTING)
    init_from: tuple[Literal["item_text", "user_text"], ...] = field(default=(), metadata=ADDED_SETTING)

    def __post_init__(self) -> None:
        if self.init_from and self.name == "llmrec":
            raise ValueError("init_from starts MF/LightGCN/SGL/SimGCL tables from text; LLMRec already takes the "
                             "texts as features (side = [...]): leave init_from empty")
        if len(set(self.init_from)) != len(self.init_from):
            raise ValueError(f"init_from lists a table twice: {list(self.init_from)}")
        if self.dim < 1 or self.n_layers < 0 or self.id_layers < 1:
            raise ValueError("dim must be >= 1, n_layers >= 0 and id_layers >= 1")
        if self.prune_drop_rate is not None and not 0.0 <= self.prune_drop_rate < 1.0:
            raise ValueError(f"prune_drop_rate must be in [0, 1), got {self.prune_drop_rate}")
        if not 0.0 <= self.mask_rate <= 1.0:
            raise ValueError(f"mask_rate must be in [0, 1], got {self.mask_rate}")
        if self.cl_weight < 0 or self.cl_temp <= 0 or self.noise_eps < 0:
            raise ValueError(f"need cl_weight >= 0, cl_temp > 0 and noise_eps >= 0, got {self.cl_weight}, "
                             f"{self.cl_temp} and {self.noise_eps}")
        if not 0.0 <= self.edge_drop_rate < 1.0:
            raise ValueError(f"edge_drop_rate must be in [0, 1), got {self.edge_drop_rate}")
        if self.name in ("sgl", "simgcl") and self.n_layers < 1:
            raise ValueError(f"{self.name} contrasts propagated views: n_layers must be >= 1")
        if self.variant == "faithful" and self.name == "llmrec" and self.mask_rate > 0 and self.mae_weight > 0:
            raise ValueError("the faithful variant has no MAE (the original ships it disabled); use variant='fixed'")

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the chosen model (side features are added by the trainer)."""
        if self.name == "mf":
            return {"dim": self.dim, "reg_weight": 1e-4 if self.reg_weight is None else self.reg_weight}
        if self.name in ("lightgcn", "sgl", "simgcl"):
            kwargs: dict[str, Any] = {"dim": self.dim, "n_layers": self.n_layers,
                                      "reg_weight": 1e-4 if self.reg_weight is None else self.reg_weight}
            if self.name != "lightgcn":
                kwargs.update(cl_weight=self.cl_weight, cl_temp=self.cl_temp)
            if self.name == "sgl":
                kwargs.update(edge_drop_rate=self.edge_drop_rate)
            if self.name == "simgcl":
                kwargs.update(noise_eps=self.noise_eps)
            return kwargs
        return {
            "variant": self.variant, "dim": self.dim, "id_layers": self.id_layers,
            "model_cat_rate": self.model_cat_rate, "user_cat_rate": self.user_cat_rate,
            "item_cat_rate": self.item_cat_rate, "prune_drop_rate": self.prune_drop_rate,
            "prune_keep": self.prune_keep, "prune_scope": self.prune_scope, "reg_weight": self.reg_weight, "mm_mf_rate": self.mm_mf_rate,
            "aug_mf_rate": self.aug_mf_rate, "feat_reg_decay": self.feat_reg_decay, "mask_rate": self.mask_rate,
            "mae_weight": self.mae_weight, "sce_gamma": self.sce_gamma,
        }


@dataclass(frozen=True)
class TrainConfig:
    """Training loop settings.

    seed: seeds the model init and the sampling generator. epochs: maximum epochs; one epoch is
    ``n_train // batch_size + 1`` steps of ``batch_size`` distinct users (the original's schedule).
    lr, weight_decay: AdamW (None = model default: 0.01 for LLMRec, the original's effective value, else 0).
    aug_sample_rate (omega_3): LLM triples per batch as a fraction of batch_size. noise_rate: random noisy triples
    per batch as a fraction of batch_size (to test denoising). protocol: standard (select on validation) | paper
    (select on test each epoch, the original's rule). selection: which epoch's model is kept: "auto" (the protocol's:
    "val" under standard, "test" under paper), "val" (the best validation value; a dataset without validation pairs
    is an error), "test" (paper protocol only) or "last" (no model selection, no early stopping: the last epoch is
    kept and nothing is evaluated during training). select_metric: e.g. recall@20. eval_every: evaluate every n
    epochs. batch_size = "auto" / eval_every = "auto": sized to the dataset at the start of the run by a fixed rule of
its sizes (about 100 steps per epoch; validation at most a quarter of training time by an operation estimate;
`llmrec_local.train.sizing`); the literal "auto" is hashed, the values are logged and in the manifest (``sizing``).
Early stopping (`llmrec_local.train.stopping`): stop after more than `patience` **epochs** without an
    improvement of the validation curve smoothed with weight `smoothing` (0 = raw) by more than `min_delta`, never
    before `min_epochs`; the checkpoint kept is the best raw validation value. Defaults: at least 50 epochs (a
    popularity plateau lasts tens of epochs on sparse splits), patience 20 epochs, smoothing 0.5, min_delta 1e-4,
    cap 300 epochs (only a run still improving reaches it, and it says so). eval_chunk: users per ranking block
    (None = by device). compile: how the training step's loss is run: off (eager, the reference) | default
    (torch.compile) | reduce-overhead (torch.compile with CUDA graphs on CUDA); see `llmrec_local.train.compiled`.
    heap: on a CPU under glibc, ``retained`` (default) keeps memory the step frees in the process heap for the next
    step instead of faulting in new pages (faster steps, a higher resident peak; `llmrec_local.train.heap`) |
    ``default`` leaves malloc as it is.
    device, progress, eval_chunk, compile, heap: runtime only (not part of the config hash).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    epochs: int = 300
    batch_size: int | Literal["auto"] = 1024
    lr: float = 1e-3
    weight_decay: float | None = None
    aug_sample_rate: float = 0.1
    noise_rate: float = 0.0
    protocol: Literal["standard", "paper"] = "standard"
    select_metric: str = "recall@20"
    eval_every: int | Literal["auto"] = 1
    # Stopping defaults chosen on a popularity-plateau split and ml-latest-small (docs/results.md, "Early
    # stopping"); they changed on purpose from v0.1's patience = 10 evaluations and no floor, so no ADDED_SETTING.
    patience: int = 20
    min_epochs: int = 50
    smoothing: float = 0.5
    min_delta: float = 1e-4
    selection: Literal["auto", "val", "test", "last"] = field(default="auto", metadata=ADDED_SETTING)
    eval_chunk: int | None = None
    device: str = "cpu"
    progress: bool = True
    compile: Literal["off", "default", "reduce-overhead"] = field(default="off", metadata=ADDED_SETTING)
    heap: Literal["retained", "default"] = field(default="retained", metadata=ADDED_SETTING)

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_every"):
            value = getattr(self, name)
            if value != "auto" and (isinstance(value, str) or value < 1):
                raise ValueError(f"{name} must be >= 1 or \"auto\", got {value!r}")
        if self.epochs < 1 or self.patience < 0:
            raise ValueError("epochs must be >= 1 and patience >= 0")
        if self.min_epochs < 0 or self.min_delta < 0 or not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"need min_epochs >= 0, min_delta >= 0 and 0 <= smoothing < 1, got {self.min_epochs}, "
                             f"{self.min_delta}, {self.smoothing}")
        if self.selection == "test" and self.protocol != "paper":
            raise ValueError("selection='test' picks the model on the test split: that is the paper protocol "
                             "(protocol='paper'); under the standard protocol use 'val' or 'last'")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("aug_sample_rate", "noise_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        kind, _, k = self.select_metric.partition("@")
        if kind not in ("recall", "ndcg", "precision", "hit") or k not in ("10", "20", "50"):
            raise ValueError(f"select_metric must be like recall@20 (recall|ndcg|precision|hit @ 10|20|50), "
                             f"got {self.select_metric!r}")


def selection_mode(config: TrainConfig) -> Literal["val", "test", "last"]:
    """The model selection `config` asks for: its ``selection``, with "auto" resolved by the protocol."""
    if config.selection != "auto":
        return config.selection
    return "test" if config.protocol == "paper" else "val"


#: Settings that change where or how visibly a run happens, not its result.
RUNTIME_FIELDS = ("device", "progress", "eval_chunk", "compile", "heap")


def train_config_hash(config: TrainConfig) -> str:
    data = {k: v for k, v in hash_dict(config).items() if k not in RUNTIME_FIELDS}
    return stable_hash(data)


#: Paper ablations (README.md:86-100 of the original, plus w/o-MAE) as config overrides.
ABLATIONS: dict[str, dict[str, Any]] = {
    "w/o-u-i": {"aug_sample_rate": 0.0},
    "w/o-u": {"model.user_cat_rate": 0.0},  # as in the original: the profile-vs-attribute loss stays on (O4)
    "w/o-u&i": {"model.user_cat_rate": 0.0, "model.item_cat_rate": 0.0},
    "w/o-prune": {"model.prune_drop_rate": 0.0},
    "w/o-mae": {"model.mae_weight": 0.0, "model.mask_rate": 0.0},
}


def ablation_overrides(name: str) -> list[str]:
    """``key=value`` overrides (for :func:`llmrec_local.config.apply_overrides`) implementing a paper ablation."""
    key = name.lower()
    if key not in ABLATIONS:
        raise ConfigError(f"unknown ablation {name!r}; choose one of {sorted(ABLATIONS)}")
    return [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in ABLATIONS[key].items()]
