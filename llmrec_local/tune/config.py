"""Tuning configuration: the ``[tune]`` table of a recipe.

    [tune]
    trials = 12                       # the budget: trials per tuned run (complete, pruned or failed)
    runs = ["lightgcn", "llmrec"]     # recipe only: which runs are tuned (empty = every run)
    base_trial = true                 # trial 0 trains the run's own settings (never below untuned on validation)
    [tune.space]                      # shared by every tuned run: TrainConfig keys (dotted for model.*)
    lr = { type = "log_float", low = 1e-4, high = 1e-2 }
    "model.dim" = { type = "categorical", choices = [32, 64, 128] }
    [tune.run_space.llmrec]           # extra dimensions of one run (the LLMRec loss weights, ...)
    "model.user_cat_rate" = { type = "float", low = 0.0, high = 3.0 }

Distributions: ``float`` and ``log_float`` (uniform in the value or in its logarithm, ``low`` < ``high``), ``int``
(integers ``low`` ... ``high`` inclusive, ``step`` optional) and ``categorical`` (``choices``: numbers, strings or
booleans). The search seed is the base config's seed (in a recipe: the first of ``recipe.seeds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import did_you_mean, from_mapping, to_dict
from ..errors import ConfigError
from ..train.config import TrainConfig

#: Settings a search may not change: what is compared (the metric, the protocol), the seed (given by the recipe),
#: the system itself (model.name) and runtime-only settings.
FIXED_KEYS = ("seed", "protocol", "select_metric", "device", "progress", "eval_chunk", "model.name")


@dataclass(frozen=True)
class Distribution:
    """One dimension of the search space (see the module docstring for the types)."""

    type: Literal["float", "log_float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: int | None = None
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("a categorical distribution takes choices = [...] only (no low, high)")
            bad = [c for c in self.choices if not isinstance(c, (bool, int, float, str))]
            if bad:
                raise ValueError(f"categorical choices must be numbers, strings or booleans, got {bad!r}")
            return
        if self.low is None or self.high is None or self.choices:
            raise ValueError(f"a {self.type} distribution takes low and high (no choices)")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")
        if self.type == "log_float" and self.low <= 0:
            raise ValueError(f"a log_float distribution needs low > 0, got {self.low}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"an int distribution needs integer bounds, got {self.low} and {self.high}")
        if self.step is not None and (self.type != "int" or self.step < 1):
            raise ValueError("step is for int distributions only and must be >= 1")


@dataclass(frozen=True)
class TuneConfig:
    """The ``[tune]`` table (module docstring).

    trials: the budget per tuned run. runs: recipe only, the tuned runs (empty = all). space: dimensions shared by
    every tuned run; run_space: extra (or replacing) dimensions per run name. startup_trials: TPE's random trials
    before it models the history. pruning: median pruning (a trial stops when its validation value at an epoch is
    below the median of the earlier trials' values at that epoch), after prune_startup_trials trials have finished
    and never before epoch prune_warmup_epochs. base_trial: the first trial trains the run's own settings (the
    base config's values of the searched keys), so that the best configuration is never below the untuned one on
    validation: what a fair "tuned vs untuned" comparison needs.
    """

    trials: int = 20
    runs: tuple[str, ...] = ()
    space: Mapping[str, Distribution] = field(default_factory=dict)
    run_space: Mapping[str, Mapping[str, Distribution]] = field(default_factory=dict)
    startup_trials: int = 5
    pruning: bool = True
    prune_startup_trials: int = 3
    prune_warmup_epochs: int = 10
    # Off by default so that searches recorded before it existed keep their identity (search_identity adds it
    # only when on).
    base_trial: bool = False

    def __post_init__(self) -> None:
        if self.trials < 1 or self.startup_trials < 0 or self.prune_startup_trials < 0 \
                or self.prune_warmup_epochs < 0:
            raise ValueError("trials must be >= 1; startup_trials, prune_startup_trials and prune_warmup_epochs >= 0")
        for name in [*self.space, *(k for s in self.run_space.values() for k in s)]:
            check_key(name)

    def space_for(self, run: str | None) -> dict[str, Distribution]:
        """The dimensions searched for `run` (None: the shared space alone), in a stable order."""
        merged = {**self.space, **(self.run_space.get(run, {}) if run is not None else {})}
        return dict(sorted(merged.items()))


def base_values(base: TrainConfig, space: Mapping[str, Distribution], run: str | None = None) -> dict[str, Any]:
    """The base config's values of the searched keys, for the base trial (``{"lr": 0.005, "model.dim": 64}``).

    A key whose base value is None (a model default resolved later, e.g. LLMRec's variant defaults) maps to None:
    the base trial leaves it unset, so it trains exactly the base config. ConfigError when a value lies outside its
    distribution (the sampler could never propose it again, and its importance would be meaningless).
    """
    data = to_dict(base)
    out: dict[str, Any] = {}
    for name, dist in space.items():
        value: Any = data
        for part in name.split("."):
            value = value[part]
        if value is not None and not _contains(dist, value):
            bounds = list(dist.choices) if dist.type == "categorical" else f"[{dist.low}, {dist.high}]"
            raise ConfigError(f"tune.base_trial: {run or 'the run'}'s own {name} = {value!r} lies outside its "
                              f"search space {bounds}; widen tune.space.{name} (or the run_space) to include it, "
                              "or set tune.base_trial = false")
        out[name] = value
    return out


def _contains(dist: Distribution, value: Any) -> bool:
    if dist.type == "categorical":
        return value in dist.choices
    assert dist.low is not None and dist.high is not None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    return dist.type != "int" or (value == int(value) and (value - dist.low) % (dist.step or 1) == 0)


def check_key(name: str) -> None:
    """ValueError unless `name` is a tunable TrainConfig key (``lr``, ``model.dim``, ...)."""
    known = _train_keys()
    if name in FIXED_KEYS:
        raise ValueError(f"space key {name!r} cannot be tuned (fixed in a search: {list(FIXED_KEYS)})")
    if name not in known:
        raise ValueError(f"space key {name!r} is not a TrainConfig setting{did_you_mean([name], known)}")


def _train_keys() -> list[str]:
    flat = []
    for key, value in to_dict(TrainConfig()).items():
        flat += [f"{key}.{k}" for k in value] if isinstance(value, dict) else [key]
    return flat


def apply_params(base: TrainConfig, params: Mapping[str, Any], where: str = "tuned") -> TrainConfig:
    """`base` with the dotted settings `params` replaced (``{"lr": 3e-3, "model.dim": 32}``); ConfigError naming
    the combination when it is invalid (e.g. n_layers = 0 for SGL)."""
    data = to_dict(base)
    for name, value in params.items():
        node = data
        *parents, last = name.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    try:
        return from_mapping(TrainConfig, data, where)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (tuned settings {dict(params)})") from exc


def base_config(table: Mapping[str, Any], where: str = "train") -> TrainConfig:
    """The TrainConfig a search starts from, from a ``[train]`` table."""
    return from_mapping(TrainConfig, table, where)


def tune_config(table: Mapping[str, Any], where: str = "tune") -> TuneConfig:
    """A `TuneConfig` from a ``[tune]`` table."""
    return from_mapping(TuneConfig, table, where)


__all__ = ["Distribution", "FIXED_KEYS", "TuneConfig", "apply_params", "base_config", "base_values", "check_key",
           "tune_config"]
