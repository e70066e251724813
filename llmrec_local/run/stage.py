"""The pipeline runner: the only module that knows the stage order.

prepare -> candidates -> augment -> embed -> tune -> train -> evaluate -> report, each stage reading and writing
artifact folders under the recipe's workdir:

    <workdir>/dataset/                       prepare
    <workdir>/runs/_candidates_base/         candidates: the base model (LightGCN by default)
    <workdir>/candidates/                    candidates: top-K unseen items per user
    <workdir>/augment/{pairs,item_attributes,user_profiles}/   augment (+ request cache)
    <workdir>/embed/<source>/                embed
    <workdir>/tune/<run>/                    tune: the validation search of a tuned run and its best settings
    <workdir>/runs/<run>-seed<k>/            train (eval/ inside: evaluate)
    <workdir>/report/                        report.md, report.html, results.json
    <workdir>/recipe.resolved.toml           the resolved recipe and its hash

Every stage skips itself when its complete artifact was built from the same config (the stage functions check
their config hash, which includes their inputs' hashes), so rerunning a recipe only does what changed.

Besides `run_pipeline`, the runner's API serves the entry points that need a stage run before their own: the
augment command line (`default_dataset`, `ensure_candidates`). Multi-seed studies (`run.multiseed`) are recipes
built in code and run by `run_pipeline` on a given dataset; the tune stage trains its trials through
`llmrec_local.run.trials`. No other module runs stages in order.

A tuned run (``[tune]``) is searched with the first seed on validation (tune stage), and every seed of it is then
trained with the best settings applied to its TrainConfig, so its run folders' config hashes reflect them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts.augmentation import read_records, read_usage
from ..artifacts.base import COMPLETE_MARKER, hardware_summary, is_complete, library_versions, read_manifest
from ..artifacts.evaluation import eval_dir, read_metrics
from ..artifacts.run import read_train_log
from ..errors import ArtifactError, ConfigError, LLMRecError
from ..seeding import derive_seed
from .config import Recipe, RunSpec, resolved_toml

if TYPE_CHECKING:
    from ..candidates.config import CandidatesConfig
    from ..train.side import SideInputs

log = logging.getLogger(__name__)

STAGES = ("prepare", "candidates", "augment", "embed", "tune", "train", "evaluate", "report")
SMOKE_ALIAS = "smoke"


class Layout:
    """Artifact paths of a recipe's workdir (one place, so the runner and the report agree). `dataset` and
    `augment` point at artifacts outside the workdir (a study on an already prepared dataset)."""

    def __init__(self, workdir: Path, *, dataset: Path | None = None, augment: Path | None = None) -> None:
        self.root = Path(workdir)
        self.dataset = Path(dataset) if dataset is not None else self.root / "dataset"
        self.candidates_base = self.root / "runs" / "_candidates_base"
        self.candidates = self.root / "candidates"
        self.augment = Path(augment) if augment is not None else self.root / "augment"
        self.embed = self.root / "embed"
        self.tune = self.root / "tune"
        self.report = self.root / "report"

    def run(self, name: str, seed: int) -> Path:
        return self.root / "runs" / f"{name}-seed{seed}"

    def tuned(self, name: str) -> Path:
        return self.tune / name


def select_stages(start: str | None, until: str | None) -> tuple[str, ...]:
    """The stages from `start` to `until` inclusive, validated against STAGES."""
    for name in (start, until):
        if name is not None and name not in STAGES:
            raise ConfigError(f"unknown stage {name!r}; stages are {list(STAGES)}")
    lo = STAGES.index(start) if start else 0
    hi = STAGES.index(until) if until else len(STAGES) - 1
    if lo > hi:
        raise ConfigError(f"--from {start} comes after --until {until}; stages run in the order {list(STAGES)}")
    return STAGES[lo:hi + 1]


def _ensure_smoke_model(recipe: Recipe) -> Path | None:
    """Build the tiny random smoke LLM into the recipe's models_dir when the recipe asks for it."""
    if recipe.augment is None or recipe.augment.model != SMOKE_ALIAS or recipe.augment.backend == "openai":
        return None
    from ..llm.registry import load_registry
    from ..llm.smoke import build_smoke_model

    if recipe.meta.models_dir is None:
        raise ConfigError("augment.model = 'smoke' needs recipe.models_dir (where the smoke model is built)")
    folder = Path(recipe.meta.models_dir) / load_registry()[SMOKE_ALIAS].folder
    log.warning("augment.model = 'smoke': a tiny RANDOM model built locally at %s; its answers are noise and "
                "only exercise the code path. Use a real model (e.g. qwen2-7b) for meaningful augmentations.",
                folder)
    return build_smoke_model(folder)


def _side_inputs(spec: RunSpec, embedded: dict[str, Path], layout: Layout, seed: int) -> "SideInputs":
    """The side inputs `spec` asks for, as artifact paths (the trainer loads and checks them), with the shuffle
    controls of `spec` seeded from the training `seed` (each seed draws its own derangement)."""
    from ..train.side import SideInputs

    def need(source: str) -> Path:
        if source not in embedded:
            raise ArtifactError(f"run {spec.name} needs the {source} embeddings, but the embed stage produced "
                                f"{sorted(embedded)}; add {source.split(':')[0]} to [embed].sources")
        return embedded[source]

    attributes = {}
    if "item_attributes" in spec.side:
        attributes = {k.split(":", 1)[1]: v for k, v in embedded.items() if k.startswith("item_attributes:")}
        if not attributes:
            attributes = {"all": need("item_attributes")}
    pairs = None
    if "pairs" in spec.side:
        pairs = layout.augment / "pairs"
        if not is_complete(pairs):
            raise ArtifactError(f"run {spec.name} uses LLM pairs but {pairs} is not complete; run the augment stage")
    profiles = next((need(s) for s in ("user_text", "user_profiles") if s in spec.side), None)
    # user_text fills the trainer's user profile slot, so its control is that slot's
    shuffle = {("user_profiles" if name == "user_text" else name): derive_seed(seed, "shuffle", name)
               for name in spec.shuffle}
    return SideInputs(
        item_text=need("item_text") if "item_text" in spec.side else None,
        item_image=need("item_image") if "item_image" in spec.side else None,
        item_attributes=attributes,
        user_profiles=profiles,
        pairs=pairs,
        use_dataset_features="dataset_features" in spec.side,
        shuffle=shuffle,
    )


def _existing_embeddings(layout: Layout) -> dict[str, Path]:
    """Embedding artifacts already in the workdir (for `--from train` after an earlier embed run)."""
    found = {}
    for marker in sorted(layout.embed.glob("**/_COMPLETE")):
        found[read_manifest(marker.parent).get("source", marker.parent.name)] = marker.parent
    return found


def _augment_stats(layout: Layout) -> dict[str, Any]:
    """Per-job statistics from the augment artifacts: counts and tokens from the manifest, engine figures
    (prefix-cache hit rate) from the job's usage record, and the most frequent generated values of each text field."""
    stats = {}
    for folder in ("pairs", "item_attributes", "user_profiles"):
        path = layout.augment / folder
        if not is_complete(path):
            continue
        manifest = read_manifest(path)
        counts, tokens, speed = manifest.get("counts", {}), manifest.get("tokens", {}), manifest.get("throughput", {})
        usage = read_usage(path)
        stats[folder] = {
            # Which LLM answered ({"alias", "backend", "model_id"}): the report warns when it is the smoke model.
            "model": manifest.get("model"),
            "requests": counts.get("requests_total"), "valid": counts.get("valid"),
            "valid_rate": counts.get("valid_rate"), "retries": counts.get("failed_attempts"),
            "failures": counts.get("failed"), "prompt_tokens": tokens.get("prompt"),
            "completion_tokens": tokens.get("completion"), "requests_per_s": speed.get("requests_per_s"),
            "output_tokens_per_s": speed.get("output_tokens_per_s"),
            "prefix_cache_hit_rate": usage.get("backend_usage", {}).get("prefix_cache_hit_rate"),
            "wall_s": manifest.get("wall_s"),
            "usd_at_paper_prices": manifest.get("cost_estimate", {}).get("usd_this_run"),
            **_token_plan_stats(manifest.get("token_plan")),
            "distributions": _value_counts(path),
        }
    return stats


def _token_plan_stats(record: dict[str, Any] | None) -> dict[str, Any]:
    """The token plan of a job beside what its run measured (`llmrec_local.augment.plan`), as report rows; nothing
    for artifacts written before jobs were planned, and only the plan's request count when no request was sent."""
    if not record:
        return {}
    plan, got = record.get("planned") or {}, record.get("measured") or {}
    first = got.get("attempt0") or {}
    wall = plan.get("wall") or {}
    return {
        "plan_requests": plan.get("requests"), "sent_requests": first.get("requests"),
        "plan_prompt_tokens": plan.get("prompt_tokens"), "sent_prompt_tokens": first.get("prompt_tokens"),
        "plan_output_tokens_max": plan.get("output_tokens_max"),
        "plan_output_tokens_expected": plan.get("output_tokens_expected"),
        "sent_output_tokens": first.get("completion_tokens"),
        "plan_prefix_cache_share": (plan.get("prefix_cache") or {}).get("share"),
        "sent_prefix_cache_share": first.get("prefix_cache_share"),
        "plan_generate_s": wall.get("generate_s"), "sent_generate_s": got.get("generate_s"),
    }


def _inspection(layout: Layout, *, seed: int, users: int = 5) -> dict[str, Any]:
    """The inspector's view of `users` sampled users with their failures, and the agreement statistics, for the
    report (`llmrec_local.augment.inspect.to_results`). A diagnostic must not sink a finished study: a project
    error while inspecting is recorded as ``{"error": message}`` and logged."""
    from ..augment.inspect import inspect_augmentations, to_results

    try:
        return to_results(inspect_augmentations(layout.root, users=users, seed=seed, failures=True))
    except LLMRecError as exc:
        log.warning("inspection of the augmentations failed: %s", exc)
        return {"error": str(exc)}


def _value_counts(job: Path, top: int = 10) -> dict[str, dict[str, Any]]:
    """The `top` most frequent values of every String column of an augmentation job's records; a free-text column
    (most of its values distinct and a median length of 40 characters or more, e.g. imported descriptions) is
    described by its text lengths instead (``{"text_lengths": {...}}``, `llmrec_local.embed.sources.text_lengths`):
    counts of 1 say nothing."""
    import polars as pl

    from ..embed.sources import text_lengths

    frame = read_records(job)
    out: dict[str, dict[str, Any]] = {}
    for name, dtype in frame.schema.items():
        if dtype == pl.String and name not in ("cache_key", "profile_text"):
            values = frame[name].drop_nulls()
            if len(values) and values.n_unique() > len(values) / 2 and values.str.len_chars().median() >= 40:
                out[name] = {"text_lengths": text_lengths(values.to_list())}
                continue
            counts = frame[name].value_counts(sort=True).head(top)
            out[name] = {str(v): int(c) for v, c in zip(counts[name], counts["count"])}
    return out


def _side_texts(embedded: Mapping[str, Path]) -> dict[str, Any]:
    """Per text source of the embed stage: where its texts came from, their lengths and, for free text from a
    file, the alignment counts (ids matched, examples of unmatched ids, coverage) recorded in its manifest."""
    out = {}
    for source, path in sorted(embedded.items()):
        inputs = read_manifest(path).get("inputs", {})
        if "text_lengths" in inputs:
            keep = ("file", "rows", "ids", "matched_ids", "unmatched_ids", "unmatched_examples", "entities",
                    "entities_with_text", "coverage", "fields", "text_lengths")
            out[source] = {k: inputs[k] for k in keep if k in inputs}
    return out


def _markers(path: Path | None) -> dict[str, int]:
    """Completion markers at or below `path` with their modification times (nanoseconds): a stage that rewrote
    or added an artifact changes this snapshot. Evaluation folders inside runs belong to the evaluate stage."""
    if path is None or not Path(path).exists():
        return {}
    found = [Path(path) / COMPLETE_MARKER] if is_complete(path) else list(Path(path).glob(f"**/{COMPLETE_MARKER}"))
    return {str(m): m.stat().st_mtime_ns for m in found if m.is_file()}


def _evaluated_runs(recipe: Recipe, layout: Layout) -> list[dict[str, Any]]:
    """Test metrics and training curves of every run of the recipe that has been evaluated."""
    runs = []
    for spec in recipe.runs:
        for seed in recipe.meta.seeds:
            run = layout.run(spec.name, seed)
            metrics = read_metrics(eval_dir(run, "test", spec.train.protocol))
            if is_complete(run) and metrics is not None:
                manifest = read_manifest(run)
                runs.append({"name": spec.name, "seed": seed, "protocol": spec.train.protocol, "path": str(run),
                             "ablation": spec.ablation, "model": f"{spec.train.model.name}"
                             + (f" ({spec.train.model.variant})" if spec.train.model.name == "llmrec" else ""),
                             "side": [f"{s} (shuffled)" if s in spec.shuffle else s for s in spec.side],
                             "stopping": manifest.get("stopping"),
                             # Runs written before the selection record: their selection split, None = last epoch.
                             "selection": (manifest.get("selection") or {}).get("mode")
                             or manifest.get("selection_split") or "last",
                             "metrics": metrics["metrics"], "curve": read_train_log(run)})
    return runs


def _comparisons(recipe: Recipe, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Paired t-tests of every run against the recipe's baseline on Recall@20 and NDCG@20, over seeds and over
    users (per-user metrics averaged over seeds), with the p-value Holm-adjusted over the runs compared on that
    metric and pairing (``p_holm``). Needs every run evaluated for the same seeds under the standard protocol; the
    paper protocol's numbers are for comparison with published tables only."""
    from .summary import summarize_runs

    baseline = recipe.meta.baseline
    by_name: dict[str, list[Path]] = {}
    for run in runs:
        by_name.setdefault(run["name"], []).append(Path(run["path"]))
    complete = len(by_name) == len(recipe.runs) and all(len(v) == len(recipe.meta.seeds) for v in by_name.values())
    if not baseline or len(by_name) < 2 or not complete or any(r["protocol"] != "standard" for r in runs):
        return []
    summary = summarize_runs(by_name, baseline)
    out = []
    for name, entry in summary["systems"].items():
        if name == baseline:
            continue
        for metric in ("recall@20", "ndcg@20"):
            for over in ("users", "seeds"):
                test = entry[metric][f"vs_baseline_over_{over}"]
                out.append({"run": name, "baseline": baseline, "metric": metric, "mean_diff": test["mean_diff"],
                            "p_value": test["t_p"], "p_holm": test["t_p_holm"], "test": f"paired t over {over}",
                            "n": test["n"]})
    return out


def _tuning(recipe: Recipe, layout: Layout) -> dict[str, Any]:
    """The finished searches of the tuned runs (study summary and trials table) for the report."""
    from ..artifacts.tune import read_study, read_trials

    return {spec.name: {"study": read_study(layout.tuned(spec.name)), "trials": read_trials(layout.tuned(spec.name))}
            for spec in recipe.tuned_runs if is_complete(layout.tuned(spec.name))}


def _candidates_from_base_model(config: "CandidatesConfig", dataset: Path, layout: Layout, *, seed: int,
                                force: bool = False) -> Path:
    """Train the base model into ``runs/_candidates_base`` (train stage), then rank with it into ``candidates/``
    (candidates stage); each step is skipped when its complete artifact has the same config."""
    from ..candidates.stage import candidates
    from ..train.stage import train

    base = train(config.train_config(seed), dataset, layout.candidates_base, force=force)
    return candidates(config, dataset, layout.candidates, base_run=base, force=force)


def default_dataset(workdir: str | Path | None = None) -> Path:
    """The bundled MovieLens ml-latest-small prepared into ``<workdir>/dataset`` (prepare stage; skipped when done).
    `workdir` None: ``artifacts/default``."""
    from ..prepare.bundled import DEFAULT_WORKDIR, bundled_dataset

    return bundled_dataset(DEFAULT_WORKDIR if workdir is None else workdir)


def ensure_candidates(config: "CandidatesConfig", dataset: str | Path, workdir: str | Path, *, seed: int = 0,
                      base_run: str | Path | None = None, imported: str | Path | None = None,
                      force: bool = False) -> Path:
    """The candidates artifact of the dataset artifact `dataset`, for entry points that need one first.

    `imported` (a file, or a complete candidates artifact used as is) or `base_run` (a finished run whose
    embeddings rank the items) -> ``<workdir>/candidates``. Neither: an existing complete
    ``<workdir>/candidates`` is reused; else the base model is trained with `seed` into
    ``<workdir>/runs/_candidates_base`` and ranked (the pipeline's candidates stage).
    """
    from ..candidates.stage import candidates

    layout = Layout(Path(workdir))
    if base_run is not None or imported is not None:
        return candidates(config, dataset, layout.candidates, base_run=base_run, imported=imported, force=force)
    if is_complete(layout.candidates):
        return layout.candidates
    log.info("no candidates or base run given: training the base model (%s, %d epochs) into %s",
             config.model.name, config.epochs, layout.candidates_base)
    return _candidates_from_base_model(config, Path(dataset), layout, seed=seed, force=force)


def run_pipeline(recipe: Recipe, *, stages: Sequence[str] = STAGES, force: bool = False,
                 models_dir: str | Path | None = None, base_url: str | None = None, backend: Any = None,
                 progress: bool = True, echo: Callable[[str], None] = print, dataset: str | Path | None = None,
                 augment: str | Path | None = None) -> dict[str, Any]:
    """Run the selected stages of `recipe`; returns the study results (also written to report/results.json).

    Args:
        recipe: a validated recipe.
        stages: which stages to run (see `select_stages`); the others' artifacts must already exist when needed.
        force: rebuild artifacts of the selected stages even when complete ones of another config exist.
        models_dir: extra folder for the model registry (default: the recipe's models_dir).
        base_url: OpenAI-compatible server for ``augment.backend = "openai"``.
        backend: an LLMBackend object to use instead of building one (tests, notebooks).
        echo: where one-line progress messages go.
        dataset: a prepared dataset artifact to use instead of ``<workdir>/dataset`` (no prepare stage runs; a
            recipe without ``[prepare]`` needs it).
        augment: an augmentation folder (pairs, attributes, profiles made earlier) to use instead of
            ``<workdir>/augment``; its artifacts feed the embed stage and the runs' side inputs.
    """
    if recipe.prepare is None and dataset is None:
        raise ConfigError(f"recipe {recipe.meta.name!r} has no [prepare] table: give the dataset artifact to use")
    layout = Layout(recipe.meta.workdir, dataset=Path(dataset) if dataset is not None else None,
                    augment=Path(augment) if augment is not None else None)
    layout.root.mkdir(parents=True, exist_ok=True)
    resolved = resolved_toml(recipe)
    # The resolved recipe beside its artifacts: what produced them, with every default spelled out.
    (layout.root / "recipe.resolved.toml").write_text(f"# recipe hash: {recipe.hash}\n{resolved}")
    models_dir = models_dir if models_dir is not None else recipe.meta.models_dir
    results: dict[str, Any] = {
        "recipe": recipe.meta.name, "config_hash": recipe.hash, "resolved_recipe": resolved,
        "stages": [], "runs": [], "comparisons": [],
        "environment": {"libraries": library_versions(), "hardware": hardware_summary()},
    }

    def timed(stage: str, path: Path | None, fn: Callable[[], Any]) -> Any:
        before = _markers(path)
        echo(f"[{stage}] ...")
        t0 = time.perf_counter()
        value = fn()
        wall = time.perf_counter() - t0
        # Skipped = the stage found every artifact it needed already complete and rewrote none of them.
        skipped = bool(before) and _markers(path) == before
        results["stages"].append({"stage": stage, "wall_s": round(wall, 2), "skipped": skipped,
                                  "path": str(path) if path else ""})
        echo(f"[{stage}] {'already complete, skipped' if skipped else f'done in {wall:.1f} s'}"
             + (f" -> {path}" if path else ""))
        return value

    if "prepare" in stages and dataset is None and recipe.prepare is not None:
        from ..prepare.stage import prepare

        prepare_config = recipe.prepare
        timed("prepare", layout.dataset, lambda: prepare(prepare_config, layout.dataset, force=force))
    dataset_manifest = read_manifest(layout.dataset)
    validation = dataset_manifest.get("validation") or {}
    results["dataset"] = {**dataset_manifest.get("counts", {}).get("final", {}), **(
        {"validation": validation["origin"] + (f" ({validation['val_from_train']:g}, {validation['mode']}, seed "
                                               f"{validation['seed']})" if "mode" in validation else "")}
        if validation else {})}

    if recipe.augment is not None:
        if "candidates" in stages and recipe.candidates is not None:
            config = recipe.candidates
            timed("candidates", layout.candidates, lambda: _candidates_from_base_model(
                config, layout.dataset, layout, seed=recipe.meta.seeds[0], force=force))
        if "augment" in stages:
            from ..augment.stage import augment

            _ensure_smoke_model(recipe)
            timed("augment", layout.augment, lambda: augment(
                recipe.augment, layout.dataset, layout.root, backend=backend,
                candidates=layout.candidates if recipe.candidates is not None else None,
                models_dir=models_dir, base_url=base_url, force=force, progress=progress))
        results["augment"] = _augment_stats(layout)
        if results["augment"]:
            results["inspection"] = _inspection(layout, seed=recipe.meta.seeds[0])

    embedded: dict[str, Path] = {}
    if recipe.embed is not None:
        if "embed" in stages:
            from ..embed.stage import embed

            embed_augment = layout.augment if recipe.augment is not None or augment is not None else None
            embedded = timed("embed", layout.embed, lambda: embed(
                recipe.embed, layout.dataset, layout.embed, augment=embed_augment, force=force, progress=progress))
        else:
            embedded = _existing_embeddings(layout)
        results["side_texts"] = _side_texts(embedded)

    trained = {spec.name: spec.train for spec in recipe.runs}
    if (search := recipe.tune) is not None:
        from dataclasses import replace

        from ..tune.stage import tune, tuned_config

        for spec in recipe.tuned_runs:
            # The search uses the first seed; every seed is then trained with what it found.
            base, out = replace(spec.train, seed=recipe.meta.seeds[0]), layout.tuned(spec.name)
            if "tune" in stages:
                side = _side_inputs(spec, embedded, layout, base.seed)
                timed(f"tune {spec.name}", out, lambda: tune(search, base, layout.dataset, out, run=spec.name,
                                                             side=side, force=force))
            if "train" in stages:
                trained[spec.name] = tuned_config(out, search, base, run=spec.name)
        results["tuning"] = _tuning(recipe, layout)

    if "train" in stages:
        from dataclasses import replace

        from ..train.stage import train

        for spec in recipe.runs:
            for seed in recipe.meta.seeds:
                side = _side_inputs(spec, embedded, layout, seed)
                out = layout.run(spec.name, seed)
                cfg = replace(trained[spec.name], seed=seed, progress=progress)
                timed(f"train {spec.name} seed {seed}", out, lambda: train(cfg, layout.dataset, out, side=side,
                                                                           force=force))
                if spec.shuffle:
                    # the permutation actually drawn, for the log (the manifest and config hash hold it too)
                    drawn = {k: v for k, v in read_manifest(out).get("side_inputs", {}).items()
                             if k.startswith("shuffle:")}
                    echo(f"  {spec.name} seed {seed}: shuffled {json.dumps(drawn, sort_keys=True)}")
    if "evaluate" in stages:
        from ..evaluate.stage import evaluate

        for spec in recipe.runs:
            for seed in recipe.meta.seeds:
                run = layout.run(spec.name, seed)
                timed(f"evaluate {spec.name} seed {seed}", eval_dir(run, "test", spec.train.protocol),
                      lambda: evaluate(run, layout.dataset, split="test", protocol=spec.train.protocol,
                                       device=spec.train.device, force=force))
    results["runs"] = _evaluated_runs(recipe, layout)
    results["comparisons"] = _comparisons(recipe, results["runs"])

    if "report" in stages:
        from ..report.stage import write_report

        def report() -> tuple[Path, Path]:
            layout.report.mkdir(parents=True, exist_ok=True)
            (layout.report / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
            return write_report(results, layout.report)

        timed("report", None, report)
        results["report_paths"] = [str(layout.report / "report.md"), str(layout.report / "report.html")]
    return results
