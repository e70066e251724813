"""``python -m llmrec_local.augment``: run the LLM augmentation jobs, merge shards, import external augmentations.

    python -m llmrec_local.augment --model qwen2-7b          # the bundled ml-latest-small, into artifacts/default
    python -m llmrec_local.augment --model qwen2-7b --data DATASET --out OUT --base-run runs/<id>
    python -m llmrec_local.augment --model smoke --data DATASET --out OUT --jobs attributes,profiles --max-requests 50
    python -m llmrec_local.augment --model qwen2-7b pairs.temperature=0.8 --dry-run
    python -m llmrec_local.augment merge --out OUT [--jobs pairs,attributes,profiles]
    python -m llmrec_local.augment import --data DATASET --out OUT --llmrec-release DIR
    python -m llmrec_local.augment candidates --data DATASET --out OUT --base-run runs/<id> [--k 10]
    python -m llmrec_local.augment inspect --out OUT [--users 20] [--failures] [--seed 0]
    python -m llmrec_local.augment slurm --shards 8 --model qwen2-7b --data DATASET --out OUT --partition gpu \
        --time 04:00:00 --env-setup "source ~/venvs/llmrec/bin/activate" [--dry-run | --submit]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli import (DefaultsHelpFormatter, add_common_args, add_dry_run, add_overrides, add_recipe, configure_logging,
                   parse_args, print_dry_run, prog, run_main, would_write)
from ..config import apply_overrides, config_hash, dump_toml, load_toml, to_dict
from ..errors import ConfigError
from ..executors.ray_executor import with_ray_flags
from ..run.config import candidates_config
from .config import JOB_NAMES, AugmentConfig, augment_config
from .shard import parse_shard

if TYPE_CHECKING:
    from ..candidates.config import CandidatesConfig

SUBCOMMANDS = ("merge", "import", "candidates", "inspect", "slurm")


def _jobs(text: str) -> list[str]:
    jobs = [j.strip() for j in text.split(",") if j.strip()]
    bad = [j for j in jobs if j not in JOB_NAMES]
    if bad or not jobs:
        raise argparse.ArgumentTypeError(f"unknown job(s) {bad}; choose from {','.join(JOB_NAMES)}")
    return jobs


class RefuseApiKey(argparse.Action):
    """``--api-key``: always an error that does not repeat the value (which is already visible in ``ps``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error("--api-key is not accepted: a key on the command line is visible to every user in `ps`; "
                     "export it as LLMREC_API_KEY (or the variable named by --api-key-env) and drop the flag")


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.augment"),
        description="Run the LLM augmentation jobs (implicit-feedback pairs, item attributes, user profiles) with a "
                    "local model. Resumable: rerun the same command after a crash; finished requests are never sent "
                    "again. Other commands: `merge` (combine --shard runs), `import` (bring external "
                    "augmentations), `candidates` (build or import candidate lists); see `<command> --help`.",
        formatter_class=DefaultsHelpFormatter)
    p.add_argument("--data", help="prepared dataset folder (from python -m llmrec_local.prepare); default: the "
                                  "bundled MovieLens ml-latest-small, prepared into artifacts/default/dataset")
    p.add_argument("--out", help="output folder; artifacts go to OUT/augment/<job>/; default: the folder holding "
                                 "--data when it is named `dataset`, else artifacts/default")
    add_recipe(p, "augment", note="; its [candidates] table sets K and the base model trained for the candidates")
    p.add_argument("--model", help="LLM alias from recipes/models.toml (e.g. qwen2-7b, smoke) or a model folder "
                                   "[default: qwen2-7b]")
    p.add_argument("--backend", choices=["auto", "vllm", "openai", "transformers"],
                   help="vllm: offline engine; openai: OpenAI-compatible server at --base-url; transformers: HF "
                        "generate with llguidance (CPU/small runs); auto: let the factory pick [default: auto]")
    p.add_argument("--base-url", help="server URL for --backend openai (e.g. http://127.0.0.1:8000/v1)")
    p.add_argument("--models-dir", help="folder holding local model folders (else $LLMREC_MODELS_DIR, ~/models)")
    p.add_argument("--jobs", type=_jobs, help=f"comma-separated subset of {','.join(JOB_NAMES)} [default: all]")
    p.add_argument("--candidates", help="pairs job: precomputed candidates (a candidates/ artifact, a parquet/CSV "
                                        "with user,rank,item, a .npy (n_users,K) or a torch.save'd tensor)")
    p.add_argument("--base-run", help="pairs job: a training run (runs/<id>) whose embeddings give the top-K "
                                      "unseen items per user (training items masked)")
    p.add_argument("--k", type=int, help="candidates per user shown to the pairs job (candidates.k) [default: 10]")
    p.add_argument("--shard", help="i/N: run only shard i of N (entities with index %% N == i); merge afterwards "
                                   "with `merge`")
    p.add_argument("--max-requests", type=int, help="handle only the first N users/items of each job (and shard): "
                                                    "quick trial runs; retries come on top")
    p.add_argument("--batch-size", type=int, help="requests per backend call and per cache flush [default: 64]")
    p.add_argument("--max-retries", type=int, help="retries of an invalid answer [default: 2]")
    p.add_argument("--max-failure-rate", type=float,
                   help="fail the job when more entities than this fraction end without a valid record "
                        "[default: 0.05]")
    p.add_argument("--seed", type=int, help="base seed of the per-request seeds [default: 0]")
    # The API key itself has no flag on purpose: argv is visible to every user in `ps`. `--api-key` is declared
    # only to refuse it (else argparse would take it as an abbreviation of --api-key-env).
    p.add_argument("--api-key", nargs="?", action=RefuseApiKey, help=argparse.SUPPRESS)
    p.add_argument("--api-key-env", metavar="NAME",
                   help="--backend openai: NAME of the environment variable holding the server's API key (never "
                        "the key itself) [default: LLMREC_API_KEY]")
    p.add_argument("--request-timeout", type=float, metavar="SECONDS",
                   help="--backend openai: per-request timeout, in (0, 3600] [default: 120]")
    p.add_argument("--request-retries", type=int, metavar="N",
                   help="--backend openai: retries after a timeout, refused connection or 408/429/5xx, in [0, 10]; "
                        "a hung server costs at most timeout x (N + 1) plus backoff [default: 3]")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="--backend openai: requests in flight at once, in [1, 1024] [default: 16]")
    p.add_argument("--executor", choices=["local", "ray"],
                   help="local: one engine in this process; ray: a pool of engines on Ray Data, same artifacts "
                        "(docs/usage.md, Scaling out) [default: local]")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="--executor ray: cluster to join (auto, ray://host:10001); default: a local Ray runtime")
    p.add_argument("--num-engines", type=int, metavar="N",
                   help="--executor ray: engines (actors) in the pool, e.g. one per GPU [default: 1]")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dry_run(p)
    add_overrides(p, "augment", "pairs.temperature=0.8")
    add_common_args(p)
    return p


def build_config(args: argparse.Namespace) -> AugmentConfig:
    """[augment] table of --recipe, then explicit flags, then the key=value overrides."""
    data: dict[str, Any] = {}
    if args.recipe:
        data = dict(load_toml(args.recipe).get("augment", {}))
    flags = {"model": args.model, "backend": args.backend, "max_requests": args.max_requests,
             "batch_size": args.batch_size, "max_retries": args.max_retries,
             "max_failure_rate": args.max_failure_rate, "seed": args.seed, "api_key_env": args.api_key_env,
             "request_timeout_s": args.request_timeout, "request_retries": args.request_retries,
             "concurrency": args.concurrency, "executor": args.executor}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.jobs:
        data["jobs"] = args.jobs
    if args.shard:
        data["shard_index"], data["shard_count"] = parse_shard(args.shard)
    data = with_ray_flags(data, args.ray_address, args.num_engines)
    data = apply_overrides(data, args.overrides)
    return augment_config(data)


def build_candidates_config(args: argparse.Namespace) -> "CandidatesConfig":
    """[candidates] table of --recipe, then --k."""
    table: dict[str, Any] = dict(load_toml(args.recipe).get("candidates", {})) if args.recipe else {}
    if args.k is not None:
        table["k"] = args.k
    return candidates_config(table)


def _output_folder(data: str | None, out: str | None) -> Path:
    """--out, else the folder holding --data when it is named `dataset`, else artifacts/default."""
    if out is not None:
        return Path(out)
    return Path(data).parent if data is not None and Path(data).name == "dataset" else Path("artifacts/default")


def _dry_run(args: argparse.Namespace, config: AugmentConfig, cand_config: "CandidatesConfig") -> int:
    """The resolved settings and every artifact the command would write, as one JSON object."""
    from ..run.stage import Layout
    from .stage import artifact_path

    layout = Layout(_output_folder(args.data, args.out))
    reads: dict[str, str] = {}
    writes: dict[str, str] = {}
    if args.data is None:
        writes["dataset"] = f"{would_write(layout.dataset)}: the bundled MovieLens ml-latest-small, prepared first"
    else:
        reads["dataset"] = str(args.data)
    if "pairs" in config.jobs:
        source = args.candidates or args.base_run
        if source is not None:
            reads["candidates" if args.candidates else "base run"] = str(source)
        elif not is_complete_artifact(layout.candidates):
            writes["candidates base run"] = would_write(layout.candidates_base)
        writes["candidates"] = would_write(layout.candidates)
    writes.update({job: would_write(artifact_path(layout.root, job, config)) for job in config.jobs})
    print(json.dumps({"augment": to_dict(config), "candidates": to_dict(cand_config),
                      "config_hash": config_hash(config), "model": config.model, "reads": reads,
                      "would_write": writes, "dry_run": "nothing was written, no model was loaded"}, indent=2))
    return 0


def main_run(argv: Sequence[str] | None) -> int:
    args = parse_args(run_parser(), argv)
    configure_logging(args.verbose)
    config = build_config(args)
    cand_config = build_candidates_config(args)
    if args.dry_run:
        return _dry_run(args, config, cand_config)
    # The pipeline runner runs the stages this command needs first (prepare the bundled dataset, train the base
    # model and rank its candidates); this module runs only the augment stage itself.
    from ..run.stage import default_dataset, ensure_candidates
    from .stage import augment, make_backend

    # Resolve the model before any other work (preparing the bundled dataset, training a base model for the
    # candidates): a missing model folder must fail in seconds and leave nothing behind.
    backend = make_backend(config, models_dir=args.models_dir, base_url=args.base_url)
    try:
        if args.data is None:
            args.data = default_dataset(args.out)
            print(f"--data not given: using the bundled MovieLens ml-latest-small prepared at {args.data}")
        args.out = _output_folder(args.data, args.out)
        candidates = None
        if "pairs" in config.jobs:
            # The base model (when one is trained here) takes the augment seed, as it always has on this path.
            candidates = ensure_candidates(cand_config, args.data, args.out, seed=config.seed, base_run=args.base_run,
                                           imported=args.candidates, force=args.force)
        paths = augment(config, args.data, args.out, backend=backend, candidates=candidates,
                        force=args.force, progress=not args.no_progress)
    finally:
        backend.close()
    for job, path in paths.items():
        print(f"{job}: {path}")
        summary = Path(path) / "summary.md"
        if summary.is_file() and args.verbose:
            print(summary.read_text())
    return 0


def merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m llmrec_local.augment merge"),
                                description="Merge the shard folders OUT/augment/<job>.shard-i-of-N of complete "
                                            "--shard runs into OUT/augment/<job>/.")
    p.add_argument("--out", required=True, help="the output folder the shard runs wrote to")
    p.add_argument("--jobs", type=_jobs, default=list(JOB_NAMES), help="jobs to merge")
    add_dry_run(p)
    add_common_args(p)
    return p


def main_merge(argv: Sequence[str]) -> int:
    args = merge_parser().parse_args(argv)
    configure_logging(args.verbose)
    from .shard import merge

    if args.dry_run:
        from .shard import shard_dirs
        from .stage import ARTIFACTS, artifact_path

        out = Path(args.out)
        reads: dict[str, str | Path] = {}
        for job in args.jobs:
            shards = sorted(shard_dirs(out, ARTIFACTS[job]).items())
            if not shards:
                raise ConfigError(f"no shard folders {ARTIFACTS[job]}.shard-i-of-N under {out / 'augment'}: nothing "
                                  f"to merge for {job}; run `python -m llmrec_local.augment ... --shard i/N` first")
            reads.update({f"{job} shard {i}": path for i, (_, path) in shards})
        writes = {job: would_write(artifact_path(out, job, AugmentConfig())) for job in args.jobs}
        return print_dry_run(f"# merge of the jobs {', '.join(args.jobs)} under {out}", writes, reads=reads)

    for job, path in merge(args.out, tuple(args.jobs), force=args.force).items():
        print(f"{job}: {path}")
    return 0


def import_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.augment import"),
        description="Import augmentations made elsewhere into OUT/augment/<job>/ (and LLMRec's embedding pickles "
                    "into OUT/embed/). Pickles are read with a restricted unpickler (no code execution).")
    p.add_argument("--data", required=True, help="prepared dataset folder the files refer to")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--llmrec-release", help="folder with LLMRec's released files (augmented_sample_dict, "
                                            "augmented_user_init_embedding, augmented_atttribute_embedding_dict, "
                                            "...): imports every one present")
    p.add_argument("--pairs", help="parquet/CSV (user,pos_item,neg_item or *_id columns) or augmented_sample_dict")
    p.add_argument("--attributes", help="parquet/CSV (item or item_id + field columns) or augmented_attribute_dict")
    p.add_argument("--profiles", help="parquet/CSV (user or user_id + profile columns) or "
                                      "augmented_user_profiling_dict")
    p.add_argument("--fields", default="director,country,language",
                   help="attribute fields to import (LLMRec's dict keys 0,1,2 map to them in order)")
    add_dry_run(p)
    add_common_args(p)
    return p


def main_import(argv: Sequence[str]) -> int:
    args = import_parser().parse_args(argv)
    configure_logging(args.verbose)
    if not any((args.llmrec_release, args.pairs, args.attributes, args.profiles)):
        raise ConfigError("import needs at least one of --llmrec-release, --pairs, --attributes, --profiles")
    if args.dry_run:
        from .stage import artifact_path

        given = {"pairs": args.pairs, "attributes": args.attributes, "profiles": args.profiles}
        reads = {"dataset": args.data, **{job: path for job, path in given.items() if path},
                 **({"LLMRec release": args.llmrec_release} if args.llmrec_release else {})}
        out = Path(args.out)
        writes = {job: would_write(artifact_path(out, job, AugmentConfig())) for job, path in given.items() if path}
        if args.llmrec_release:
            writes["LLMRec release"] = f"one artifact per file present, under {out / 'augment'} and {out / 'embed'}"
        return print_dry_run(f"# import into {out}", writes, reads=reads)
    from . import imports
    from .stage import load_dataset

    ds = load_dataset(args.data)
    written: dict[str, Path] = {}
    if args.llmrec_release:
        written.update(imports.import_llmrec_release(args.llmrec_release, ds, args.out, force=args.force))
    if args.pairs:
        written["pairs"] = imports.import_pairs(args.pairs, ds, args.out, force=args.force)
    if args.attributes:
        fields = tuple(f.strip() for f in args.fields.split(",") if f.strip())
        written["attributes"] = imports.import_attributes(args.attributes, ds, args.out, fields=fields,
                                                          force=args.force)
    if args.profiles:
        written["profiles"] = imports.import_profiles(args.profiles, ds, args.out, force=args.force)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def candidates_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.augment candidates"),
        description="Write OUT/candidates/ (user, rank, item): the top-K unseen items per user from a training "
                    "run's embeddings (training items masked; the original did not mask them), or imported.")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", required=True, help="output folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--base-run", help="training run folder with embeddings.safetensors")
    src.add_argument("--candidates", help="precomputed candidates file (parquet/CSV/.npy/torch.save)")
    p.add_argument("--k", type=int, default=10, help="candidates per user (= k=...)")
    add_dry_run(p)
    add_overrides(p, "candidates", "k=20")
    add_common_args(p)
    return p


def main_candidates(argv: Sequence[str]) -> int:
    args = parse_args(candidates_parser(), argv)
    configure_logging(args.verbose)
    from ..run.stage import Layout, ensure_candidates

    config = candidates_config(apply_overrides({"k": args.k}, args.overrides))
    if args.dry_run:
        source = ("base run", args.base_run) if args.base_run else ("imported candidates", args.candidates)
        return print_dry_run(dump_toml({"candidates": to_dict(config)}),
                             {"candidates": would_write(Layout(Path(args.out)).candidates)},
                             reads={"dataset": args.data, source[0]: source[1]})
    path = ensure_candidates(config, args.data, args.out, base_run=args.base_run, imported=args.candidates,
                             force=args.force)
    print(f"candidates: {path}")
    return 0


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give a count >= 0")
    return value


def inspect_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.augment inspect"),
        description="Show what the LLM said, reading only: for a seeded sample of users, the training history beside "
                    "the candidates (the chosen liked/disliked pair marked, * = items the user interacted with in "
                    "validation/test), the generated profile and the attributes of the liked and disliked items; "
                    "then how often the liked (disliked) item is one the user interacted with later, against a "
                    "random candidate (no labels needed).",
        formatter_class=DefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="a recipe workdir or augment --out folder (holding dataset/, "
                                                "candidates/, augment/)")
    p.add_argument("--users", type=_count, default=20, help="users to sample")
    p.add_argument("--failures", action="store_true", help="also show failed attempts (raw answer and reason) of "
                                                           "the sampled users and of sampled failed entities")
    p.add_argument("--seed", type=int, default=0, help="seed of the user sample (same seed, same users)")
    p.add_argument("--history", type=_count, default=10, help="most recent training titles shown per user")
    p.add_argument("--json", action="store_true", help="print the structured result as JSON instead of text")
    return p


def main_inspect(argv: Sequence[str]) -> int:
    """Read-only (it writes nothing, so it has no --dry-run)."""
    args = inspect_parser().parse_args(argv)
    from .inspect import inspect_augmentations, render_text, to_results

    result = inspect_augmentations(args.out, users=args.users, seed=args.seed, failures=args.failures,
                                   history=args.history)
    if args.json:
        payload = to_results(result)
        del payload["text"]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(render_text(result), end="")
    return 0


def slurm_parser() -> argparse.ArgumentParser:
    """The `slurm` subcommand's own flags; every other flag is an augment flag, handed to each array task."""
    # allow_abbrev=False: an abbreviation must never swallow an augment flag meant for the tasks.
    p = argparse.ArgumentParser(
        prog=prog("python -m llmrec_local.augment slurm"), allow_abbrev=False,
        description="Write (and with --submit submit) a Slurm job array that runs the augment command once per "
                    "shard (--shard i/N), and a merge job that starts after every shard succeeded. Every flag not "
                    "listed here is an augment flag or KEY=VALUE override (--data, --model, --jobs, --recipe, "
                    "--backend, pairs.temperature=0.8, ...; see `python -m llmrec_local.augment --help`) and is "
                    "passed on to each task. Rerun the same command "
                    "after a failed task: shards already complete for this config are left out of the array. "
                    "Options come from the [slurm] table of --slurm-config, then these flags; unset ones are left "
                    "to the cluster's defaults.")
    p.add_argument("--shards", type=int, required=True, help="N: shards, one array task each (N >= 2)")
    p.add_argument("--out", required=True, help="output folder of the augment runs (on a filesystem every node "
                                                "sees); the scripts go to OUT/slurm/")
    p.add_argument("--slurm-config", metavar="TOML", help="file whose [slurm] table gives the defaults of the "
                                                          "options below (one per cluster)")
    p.add_argument("--partition", help="partition of the jobs")
    p.add_argument("--account", help="account charged")
    p.add_argument("--time", help="time limit of one array task (HH:MM:SS, D-HH:MM:SS)")
    p.add_argument("--gpus-per-task", type=int, help="GPUs per array task; 0: none [default: 1]")
    p.add_argument("--cpus-per-task", type=int, help="CPUs per task")
    p.add_argument("--mem", help="memory per task (e.g. 64G)")
    p.add_argument("--job-name", help="base job name [default: llmrec-augment]")
    p.add_argument("--max-parallel", type=int, help="array tasks running at once at most (--array=...%%K)")
    p.add_argument("--merge-partition", help="partition of the merge job (no GPU) [default: --partition]")
    p.add_argument("--merge-time", help="time limit of the merge job [default: --time]")
    p.add_argument("--env-setup", action="append", metavar="LINE",
                   help="shell line run first in each job, e.g. \"source ~/venvs/llmrec/bin/activate\" "
                        "(repeatable, in order)")
    p.add_argument("--python", help="interpreter the jobs run after --env-setup [default: python]")
    p.add_argument("--models-dir", help="model folders, exported to the jobs as LLMREC_MODELS_DIR [default: "
                                        "$LLMREC_MODELS_DIR here]")
    p.add_argument("--sbatch-option", action="append", metavar="--NAME=VALUE",
                   help="further #SBATCH option, e.g. --sbatch-option=--qos=high (repeatable)")
    p.add_argument("--submit", action="store_true", help="submit with sbatch after writing the scripts")
    p.add_argument("--dry-run", action="store_true", help="print the scripts and where they would go, write and "
                                                          "submit nothing")
    p.add_argument("--force", action="store_true", help="rerun every shard and rebuild the merged artifacts")
    return p


def main_slurm(argv: Sequence[str]) -> int:
    import os
    import shlex

    from ..run.stage import Layout
    from . import slurm

    args, rest = slurm_parser().parse_known_args(argv)
    out = Path(args.out)
    task_argv = [*rest, "--out", args.out, *(["--force"] if args.force else [])]
    # The tasks' flags are checked here, with the augment parser itself, so a typo fails now and not on the cluster.
    run_args = parse_args(run_parser(), task_argv)
    configure_logging(run_args.verbose)
    if run_args.shard:
        raise ConfigError("--shard is set per array task (--shard $SLURM_ARRAY_TASK_ID/N); drop it and give --shards N")
    if run_args.data is None:
        raise ConfigError("slurm needs --data: every array task must read the same prepared dataset; prepare it first "
                          "(python -m llmrec_local.prepare ...) and pass its folder")
    if not run_args.no_progress:
        task_argv.append("--no-progress")  # progress bars in a batch log are noise
    config = build_config(run_args)
    candidates = None
    if "pairs" in config.jobs:
        # The N tasks would all write OUT/candidates at the same time: the candidates must exist before submitting.
        build = (f"python -m llmrec_local.augment candidates --data {shlex.quote(run_args.data)} "
                 f"--out {shlex.quote(args.out)} --base-run RUN (or --candidates FILE)")
        if run_args.base_run or (run_args.candidates and not is_complete_artifact(run_args.candidates)):
            raise ConfigError(f"slurm: the pairs job's candidates must be built once before the array, not by each "
                              f"task: run `{build}`, then rerun this command without --base-run/--candidates")
        candidates = run_args.candidates or Layout(out).candidates
        if not is_complete_artifact(candidates):
            raise ConfigError(f"slurm: the pairs job needs a complete candidates artifact at {candidates}; build it "
                              f"first: `{build}` (or drop pairs from --jobs)")
    table: dict[str, Any] = {}
    if args.slurm_config:
        document = load_toml(args.slurm_config)
        if "slurm" not in document:
            raise ConfigError(f"--slurm-config {args.slurm_config} has no [slurm] table; add one (keys: partition, "
                              "account, time, gpus_per_task, ...)")
        table = dict(document["slurm"])
    flags = {"partition": args.partition, "account": args.account, "time": args.time,
             "gpus_per_task": args.gpus_per_task, "cpus_per_task": args.cpus_per_task, "mem": args.mem,
             "job_name": args.job_name, "max_parallel": args.max_parallel, "merge_partition": args.merge_partition,
             "merge_time": args.merge_time, "env_setup": args.env_setup, "python": args.python,
             "models_dir": args.models_dir, "sbatch_options": args.sbatch_option}
    table.update({k: v for k, v in flags.items() if v is not None})
    if "models_dir" not in table and os.environ.get("LLMREC_MODELS_DIR"):
        table["models_dir"] = os.environ["LLMREC_MODELS_DIR"]
    options = slurm.slurm_config(table)
    folder = out.absolute() / "slurm"
    log_dir = str(folder / "logs")
    if any(c.isspace() or c == "%" for c in log_dir):
        raise ConfigError(f"--out {args.out!r}: the log path {log_dir} holds a space or %, which #SBATCH --output "
                          "cannot carry; choose an output folder without them")
    pending = slurm.unfinished_shards(config, run_args.data, out, shards=args.shards, candidates=candidates,
                                      force=args.force)
    workdir = str(Path.cwd())
    scripts = {}
    if pending:
        scripts[slurm.ARRAY_SCRIPT] = slurm.render_array_script(options, task_argv=task_argv, shards=args.shards,
                                                                pending=pending, workdir=workdir, log_dir=log_dir)
    merge_argv = ["--out", args.out, "--jobs", ",".join(config.jobs), *(["--force"] if args.force else [])]
    scripts[slurm.MERGE_SCRIPT] = slurm.render_merge_script(options, merge_argv=merge_argv, workdir=workdir,
                                                            log_dir=log_dir)
    array_path = folder / slurm.ARRAY_SCRIPT if pending else None
    scripts[slurm.SUBMIT_SCRIPT] = slurm.render_submit_script(
        None if array_path is None else str(array_path), str(folder / slurm.MERGE_SCRIPT))
    done = [i for i in range(args.shards) if i not in pending]
    if not pending:
        print(f"all {args.shards} shards are complete for this config: only the merge job is needed")
    elif done:
        print(f"shards {slurm.array_spec(done)} of {args.shards} are complete for this config: the array runs only "
              f"shards {slurm.array_spec(pending)}")
    if args.dry_run:
        for name, text in scripts.items():
            print(f"==> {folder / name} <==\n{text}")
        return 0
    if array_path is None:
        # A previous generation's array script would still hold shards that are done now.
        (folder / slurm.ARRAY_SCRIPT).unlink(missing_ok=True)
    for path in slurm.write_scripts(folder, scripts):
        print(f"wrote {path}")
    if not args.submit:
        print(f"submit with: bash {shlex.quote(str(folder / slurm.SUBMIT_SCRIPT))}")
        return 0
    ids = slurm.submit(array_path, folder / slurm.MERGE_SCRIPT)
    if ids.array_id is not None:
        print(f"submitted the shard array as job {ids.array_id}")
    print(f"submitted the merge job as job {ids.merge_id}")
    return 0


def is_complete_artifact(path: str | Path) -> bool:
    """Whether `path` is a finished artifact folder (the candidates a task may use as is)."""
    from ..artifacts.base import is_complete

    return Path(path).is_dir() and is_complete(path)


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return {"merge": main_merge, "import": main_import, "candidates": main_candidates,
                "inspect": main_inspect, "slurm": main_slurm}[argv[0]](argv[1:])
    return main_run(argv)


if __name__ == "__main__":
    run_main(main)
