"""Recipes: one TOML file describing a whole study, loaded into typed, frozen config objects.

A recipe has these tables (all but ``[recipe]`` and ``[prepare]`` optional):

    [recipe]      name, workdir, seeds, baseline, models_dir, description
    [prepare]     -> llmrec_local.data.PrepareConfig
    [candidates]  -> llmrec_local.candidates.config.CandidatesConfig: K and the base model (default LightGCN) whose
                  top-K unseen items feed the pair job
    [augment]     -> llmrec_local.augment.config.AugmentConfig
    [embed]       -> llmrec_local.embed.stage.EmbedConfig
    [train]       -> TrainConfig defaults shared by every run
    [tune]        -> llmrec_local.tune.config.TuneConfig: a validation search per tuned run (budget, space); a tuned
                  run's TrainConfig gets the best settings found before its seeds are trained
    [runs.<name>] one trained system: ``side`` (which side inputs it uses), optional ``shuffle`` (side inputs
                  to derange across entities: the content control), optional ``ablation`` (a paper ablation
                  name), and any TrainConfig keys, deep-merged over ``[train]``

Seeds are set once, by ``recipe.seeds``: every run is trained once per seed and the candidates' base model uses the
first, so a ``seed`` key in ``[train]``, ``[runs.<name>]`` or ``[candidates]`` is an error.

Unknown keys anywhere are errors. Relative paths resolve against the current working directory (run recipes from
the repository root). ``key=value`` overrides address the raw tables (``train.epochs=5``,
``runs.llmrec.model.variant=faithful``) and are applied before validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..augment.config import AugmentConfig, augment_config
from ..candidates.config import CandidatesConfig
from ..config import (
    apply_overrides,
    config_hash,
    did_you_mean,
    dump_toml,
    from_mapping,
    load_toml,
    to_dict,
)
from ..embed.config import EmbedConfig
from ..errors import ConfigError
from ..prepare.config import PrepareConfig
from ..train.config import TrainConfig, ablation_overrides
from ..tune.config import TuneConfig, tune_config

#: Side inputs a run may use, mapped onto the artifacts the augment and embed stages write; ``dataset_features``
#: is the text/image feature matrices shipped inside an LLMRec-layout dataset (``features/*.npy``); ``user_text``
#: is free user text from a file (``embed.user_text_file``), LLMRec's user profile feature like ``user_profiles``.
SIDE_INPUTS = ("item_text", "item_image", "item_attributes", "user_profiles", "user_text", "pairs",
               "dataset_features")
#: side inputs produced by the embed stage
EMBEDDED_INPUTS = ("item_text", "item_image", "item_attributes", "user_profiles", "user_text")


@dataclass(frozen=True)
class RecipeMeta:
    """The ``[recipe]`` table.

    name: recipe name (report title). workdir: folder holding every artifact of the recipe. seeds: each run is
    trained once per seed. baseline: run name the others are tested against (paired tests). models_dir: extra
    folder for local models (the smoke model is built there when the recipe uses it).
    """

    name: str
    workdir: Path = Path("artifacts/default")
    seeds: tuple[int, ...] = (0,)
    baseline: str | None = None
    models_dir: Path | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds lists a seed twice: {list(self.seeds)}")


@dataclass(frozen=True)
class RunSpec:
    """One system of the study: its full training config, the side inputs it consumes and those of them it
    shuffles across entities (a seeded derangement per training seed: the content control)."""

    name: str
    train: TrainConfig
    side: tuple[str, ...] = ()
    ablation: str | None = None
    shuffle: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. `prepare` is None only for a study built in code on an already prepared dataset (the
    multi-seed command): the runner is then given the dataset artifact and runs no prepare stage."""

    meta: RecipeMeta
    prepare: PrepareConfig | None
    candidates: CandidatesConfig | None
    augment: AugmentConfig | None
    embed: EmbedConfig | None
    runs: tuple[RunSpec, ...]
    tune: TuneConfig | None = None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def hash(self) -> str:
        """Identity of the whole recipe (every table after overrides and defaults)."""
        return config_hash(resolved_dict(self))

    def run(self, name: str) -> RunSpec:
        for spec in self.runs:
            if spec.name == name:
                return spec
        raise ConfigError(f"recipe {self.meta.name!r} has no run {name!r}; runs: {[r.name for r in self.runs]}")

    @property
    def tuned_runs(self) -> tuple[RunSpec, ...]:
        """The runs the ``[tune]`` table searches (``tune.runs``, or every run when it lists none)."""
        if self.tune is None:
            return ()
        return tuple(r for r in self.runs if not self.tune.runs or r.name in self.tune.runs)


TOP_LEVEL = ("recipe", "prepare", "candidates", "augment", "embed", "train", "tune", "runs")


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _no_seed(table: Mapping[str, Any], where: str) -> None:
    """ConfigError for a ``seed`` key: a run's seed would be replaced by each of ``recipe.seeds`` anyway."""
    if "seed" in table:
        raise ConfigError(f"{where}.seed: the seeds come from recipe.seeds (every run is trained once per seed, the "
                          f"candidates' base model with the first); remove {where}.seed and list {table['seed']!r} "
                          "in recipe.seeds instead")


def candidates_config(table: Mapping[str, Any], where: str = "candidates") -> CandidatesConfig:
    """A `CandidatesConfig` from a ``[candidates]`` table: the base model is a LightGCN unless ``model.name`` says
    otherwise (``model = { dim = 16 }`` tunes that LightGCN); a ``seed`` key is an error (see `_no_seed`)."""
    _no_seed(table, where)
    model = table.get("model", {})
    if isinstance(model, Mapping):
        model = {"name": "lightgcn", **model}
    return from_mapping(CandidatesConfig, {**table, "model": model}, where)


def _run_spec(name: str, table: Mapping[str, Any], train_base: Mapping[str, Any]) -> RunSpec:
    table = dict(table)
    side = table.pop("side", [])
    shuffle = table.pop("shuffle", [])
    ablation = table.pop("ablation", None)
    where = f"runs.{name}"
    _no_seed(table, where)
    if not isinstance(side, list) or any(s not in SIDE_INPUTS for s in side):
        raise ConfigError(f"{where}.side: {side!r} must be a list drawn from {list(SIDE_INPUTS)}")
    if not isinstance(shuffle, list) or any(s not in side for s in shuffle):
        raise ConfigError(f"{where}.shuffle: {shuffle!r} must list side inputs of this run ({side}); e.g. "
                          f"shuffle = [\"item_text\"] with side = [\"item_text\"]")
    if "user_text" in side and "user_profiles" in side:
        raise ConfigError(f"{where}.side: user_text and user_profiles are both LLMRec's user profile feature; "
                          "choose one")
    if ablation is not None and not isinstance(ablation, str):
        raise ConfigError(f"{where}.ablation: expected a string such as 'w/o-prune', got {ablation!r}")
    merged = _deep_merge(train_base, table)
    if ablation is not None:
        merged = apply_overrides(merged, ablation_overrides(ablation))
    return RunSpec(name=name, train=from_mapping(TrainConfig, merged, where), side=tuple(side), ablation=ablation,
                   shuffle=tuple(shuffle))


def parse_recipe(data: Mapping[str, Any], overrides: Sequence[str] = ()) -> Recipe:
    """Validate a raw recipe mapping (after `overrides`) into a `Recipe`."""
    data = apply_overrides(data, overrides)
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"recipe: unknown table(s) {unknown}{did_you_mean(unknown, TOP_LEVEL)}; valid tables are "
                          f"{list(TOP_LEVEL)}")
    for name in ("recipe", "prepare"):
        if name not in data:
            raise ConfigError(f"recipe: the [{name}] table is required (see recipes/README.md)")
    meta = from_mapping(RecipeMeta, data["recipe"], "recipe")
    prepare = from_mapping(PrepareConfig, data["prepare"], "prepare")
    augment = augment_config(data["augment"]) if "augment" in data else None
    embed = from_mapping(EmbedConfig, data["embed"], "embed") if "embed" in data else None
    train_base = data.get("train", {})
    _no_seed(train_base, "train")
    from_mapping(TrainConfig, train_base, "train")  # validate the shared table on its own first
    candidates = None
    if augment is not None and "pairs" in augment.jobs:
        candidates = candidates_config(data.get("candidates", {}))
    elif "candidates" in data:
        raise ConfigError("recipe: [candidates] is set but no [augment] table runs the pairs job")
    runs_table = data.get("runs") or {"default": {}}
    runs = tuple(_run_spec(name, table, train_base) for name, table in runs_table.items())
    needs = {s for r in runs for s in r.side}
    if needs & {"pairs", "item_attributes", "user_profiles"} and augment is None:
        raise ConfigError(f"recipe: runs use {sorted(needs)} but there is no [augment] table to produce them")
    if needs & set(EMBEDDED_INPUTS) and embed is None:
        raise ConfigError(f"recipe: runs use {sorted(needs)} but there is no [embed] table to produce them")
    if "user_text" in needs and embed is not None and "user_text" not in embed.sources:
        raise ConfigError("recipe: runs use user_text but embed.sources does not list it; add \"user_text\" to "
                          "[embed].sources and set embed.user_text_file")
    for run in runs:
        text_init = {"item_text", "user_text", "user_profiles"} if run.train.model.init_from else set()
        if run.side and run.train.model.name != "llmrec" and not set(run.side) <= {"pairs"} | text_init:
            raise ConfigError(f"runs.{run.name}: model {run.train.model.name!r} uses no side features; "
                              "only the llmrec model does (MF and LightGCN accept side = [\"pairs\"], and the text "
                              "inputs named by model.init_from)")
    if meta.baseline is not None and meta.baseline not in {r.name for r in runs}:
        raise ConfigError(f"recipe.baseline: {meta.baseline!r} is not one of the runs {[r.name for r in runs]}")
    tune = _tune(data["tune"], runs) if "tune" in data else None
    return Recipe(meta, prepare, candidates, augment, embed, runs, tune=tune, raw=data)


def _tune(table: Mapping[str, Any], runs: tuple[RunSpec, ...]) -> TuneConfig:
    """The ``[tune]`` table, checked against the runs: tuned and run_space names exist, tuned runs select on
    validation (the paper protocol selects on test)."""
    config = tune_config(table)
    names = [r.name for r in runs]
    for key, listed in (("runs", config.runs), ("run_space", tuple(config.run_space))):
        unknown = sorted(set(listed) - set(names))
        if unknown:
            raise ConfigError(f"tune.{key}: {unknown} are not runs of the recipe{did_you_mean(unknown, names)}; "
                              f"runs are {names}")
    tuned = [r for r in runs if not config.runs or r.name in config.runs]
    untuned = sorted(set(config.run_space) - {r.name for r in tuned})
    if untuned:
        raise ConfigError(f"tune.run_space: {untuned} are not tuned (tune.runs = {list(config.runs)})")
    for run in tuned:
        if run.train.protocol != "standard":
            raise ConfigError(f"runs.{run.name}: protocol {run.train.protocol!r} selects on test; a tuned run "
                              "selects on validation only: use protocol = 'standard' or leave it out of tune.runs")
        if not config.space_for(run.name):
            raise ConfigError(f"tune: run {run.name} has an empty search space; declare tune.space or "
                              f"tune.run_space.{run.name}")
    return config


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read and validate a recipe file; ConfigError names the table and key of any problem."""
    return parse_recipe(load_toml(path), overrides)


def resolved_dict(recipe: Recipe) -> dict[str, Any]:
    """Every setting of the recipe with defaults filled in (what `--dry-run` prints and the hash covers)."""
    out: dict[str, Any] = {"recipe": to_dict(recipe.meta)}
    if recipe.prepare is not None:
        out["prepare"] = to_dict(recipe.prepare)
    if recipe.candidates is not None:
        out["candidates"] = to_dict(recipe.candidates)
    if recipe.augment is not None:
        out["augment"] = to_dict(recipe.augment)
    if recipe.embed is not None:
        out["embed"] = to_dict(recipe.embed)
    if recipe.tune is not None:
        out["tune"] = to_dict(recipe.tune)
    # shuffle only when set: recipes without controls keep their hash
    out["runs"] = {r.name: {"side": list(r.side), **({"shuffle": list(r.shuffle)} if r.shuffle else {}),
                            **({"ablation": r.ablation} if r.ablation else {}), **to_dict(r.train)}
                   for r in recipe.runs}
    return out


def resolved_toml(recipe: Recipe) -> str:
    return dump_toml(resolved_dict(recipe))


__all__ = ["EMBEDDED_INPUTS", "SIDE_INPUTS", "Recipe", "RecipeMeta", "RunSpec", "load_recipe", "parse_recipe",
           "resolved_dict", "resolved_toml"]
