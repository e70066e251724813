"""Slurm job arrays for sharded augmentation runs: render the scripts, list the unfinished shards, submit.

``python -m llmrec_local.augment slurm --shards N ...`` writes into ``<out>/slurm/``:

    augment-shards.sbatch   a job array, one task per unfinished shard; task i runs the ordinary augment command
                            with ``--shard i/N`` (resumable through the request cache, like any shard run)
    augment-merge.sbatch    ``python -m llmrec_local.augment merge``, submitted with ``--dependency=afterok:<array>``
    submit.sh               the two ``sbatch`` calls, for submitting by hand (``--submit`` makes them itself)
    logs/                   one log per array task (``%A_%a``) and one for the merge job

Every ``#SBATCH`` option comes from the `SlurmConfig` (the ``[slurm]`` table of ``--slurm-config``, then the flags):
nothing about a particular cluster is written here. Resubmitting is regenerating: a shard whose every job artifact is
complete for the same config (`llmrec_local.artifacts.base.reusable`, the rule the runner skips it by) is left out
of ``--array``; when none is left only the merge script is written.

The functions are pure (render text from values) except `unfinished_shards` (reads artifacts), `write_scripts`
(writes files) and `submit` (runs ``sbatch`` with a timeout).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..artifacts.augmentation import STAGE
from ..artifacts.base import reusable
from ..config import from_mapping
from ..errors import ConfigError
from .config import AugmentConfig
from .runner import job_identity
from .stage import artifact_path, build_jobs, load_dataset

ARRAY_SCRIPT = "augment-shards.sbatch"
MERGE_SCRIPT = "augment-merge.sbatch"
SUBMIT_SCRIPT = "submit.sh"
#: the variable Slurm sets in each array task to that task's index (here: the shard index)
TASK_VARIABLE = "SLURM_ARRAY_TASK_ID"

# Values that end up on an ``#SBATCH`` line: sbatch splits those lines on whitespace and a newline would start a
# new line (an injected option or command), so both are refused rather than quoted.
_NAME = re.compile(r"[A-Za-z0-9_.,:@+=/-]+")
_TIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}")
_MEM = re.compile(r"\d+[KMGT]?")


def _check(name: str, value: str | None, pattern: re.Pattern[str], example: str) -> None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"{name}={value!r} is not a valid Slurm value; give e.g. {example}")


@dataclass(frozen=True)
class SlurmConfig:
    """Options of the generated Slurm jobs (the ``[slurm]`` table; unset options are left to the cluster's defaults).

    Attributes:
        partition, account: ``--partition`` and ``--account`` of both jobs (merge_partition overrides the merge's).
        time: wall-clock limit of one array task (``MM``, ``HH:MM:SS``, ``D-HH:MM:SS``); merge_time for the merge.
        gpus_per_task: GPUs of one array task (one LLM engine per shard); 0 requests none (CPU backends, or a
            cluster that wants ``--gres``, given through sbatch_options instead). The merge job gets no GPU.
        cpus_per_task, mem: ``--cpus-per-task`` and ``--mem`` (e.g. ``64G``) of both jobs.
        job_name: base name; the jobs are ``<job_name>-shards`` and ``<job_name>-merge``.
        max_parallel: at most this many array tasks at once (``--array=...%K``); None: no limit.
        env_setup: shell lines run first in both jobs (``module load ...``, ``source venv/bin/activate``), verbatim.
        python: the interpreter the jobs run (after env_setup).
        models_dir: exported as LLMREC_MODELS_DIR (where the model registry finds the model folders).
        sbatch_options: further ``#SBATCH`` options of both jobs, verbatim (``--qos=high``, ``--gres=gpu:a100:1``).
    """

    partition: str | None = None
    account: str | None = None
    time: str | None = None
    gpus_per_task: int = 1
    cpus_per_task: int | None = None
    mem: str | None = None
    job_name: str = "llmrec-augment"
    max_parallel: int | None = None
    merge_partition: str | None = None
    merge_time: str | None = None
    env_setup: tuple[str, ...] = ()
    python: str = "python"
    models_dir: str | None = None
    sbatch_options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("partition", "account", "merge_partition", "job_name"):
            _check(name, getattr(self, name), _NAME, "gpu (letters, digits and _.,:@+=/- only)")
        for name in ("time", "merge_time"):
            _check(name, getattr(self, name), _TIME, "04:00:00 or 1-12:00:00")
        _check("mem", self.mem, _MEM, "64G or 16000M")
        if self.gpus_per_task < 0:
            raise ValueError(f"gpus_per_task={self.gpus_per_task} is negative; give 0 (no GPU) or more")
        for name in ("cpus_per_task", "max_parallel"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} must be >= 1 (or left unset)")
        for line in self.env_setup:
            if "\n" in line or "\r" in line or not line.strip():
                raise ValueError(f"env_setup line {line!r} must be one non-empty line; give several lines as "
                                 "several entries (repeat --env-setup)")
        for option in self.sbatch_options:
            if not option.startswith("--") or any(c.isspace() for c in option):
                raise ValueError(f"sbatch_options entry {option!r} must be one --name=value option without spaces, "
                                 "e.g. --qos=high")
        if not self.python.strip() or "\n" in self.python:
            raise ValueError(f"python={self.python!r} must name an interpreter, e.g. python or /opt/venv/bin/python")
        if self.models_dir is not None and "\n" in self.models_dir:
            raise ValueError(f"models_dir={self.models_dir!r} must be one path")


def slurm_config(table: Mapping[str, Any], where: str = "slurm") -> SlurmConfig:
    """A `SlurmConfig` from a ``[slurm]`` table (unknown keys and bad values are ConfigErrors naming them)."""
    return from_mapping(SlurmConfig, table, where)


def array_spec(indices: Sequence[int], max_parallel: int | None = None) -> str:
    """``--array`` value: sorted indices with runs collapsed (``[0, 1, 2, 5]`` -> ``0-2,5``), ``%K`` throttle."""
    if not indices:
        raise ValueError("an array needs at least one index")
    values = sorted(set(indices))
    parts: list[str] = []
    start = prev = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts) + (f"%{max_parallel}" if max_parallel else "")


def _header(config: SlurmConfig, *, name: str, partition: str | None, time: str | None, gpus: int, log: str,
            array: str | None = None) -> list[str]:
    options = [f"--job-name={name}"]
    if array is not None:
        options.append(f"--array={array}")
    options.append("--ntasks=1")
    if gpus:
        options.append(f"--gpus-per-task={gpus}")
    for flag, value in (("--cpus-per-task", config.cpus_per_task), ("--mem", config.mem), ("--time", time),
                        ("--partition", partition), ("--account", config.account)):
        if value is not None:
            options.append(f"{flag}={value}")
    options.append(f"--output={log}")
    options.extend(config.sbatch_options)
    return [f"#SBATCH {option}" for option in options]


def _environment(config: SlurmConfig, workdir: str) -> list[str]:
    lines = ["# Conda's and some module systems' activation scripts read unset variables, so no `set -u`.",
             "set -eo pipefail", *config.env_setup, "export HF_HUB_OFFLINE=1"]
    if config.models_dir is not None:
        lines.append(f"export LLMREC_MODELS_DIR={shlex.quote(config.models_dir)}")
    # Relative paths among the flags mean what they meant where the scripts were generated.
    lines.append(f"cd {shlex.quote(workdir)}")
    return lines


def render_array_script(config: SlurmConfig, *, task_argv: Sequence[str], shards: int, pending: Sequence[int],
                        workdir: str, log_dir: str) -> str:
    """The job-array script: one task per index in `pending`, each running
    ``<python> -m llmrec_local.augment <task_argv> --shard $SLURM_ARRAY_TASK_ID/<shards>``."""
    todo = set(pending)
    done = [i for i in range(shards) if i not in todo]
    lines = ["#!/bin/bash",
             "# Generated by `python -m llmrec_local.augment slurm`. To resubmit after a failed task, rerun that",
             "# command rather than this script: it leaves the shards that are complete out of --array.",
             f"# Shards {array_spec(pending)} of {shards}"
             + (f" (shards {array_spec(done)} are complete for this config)." if done else "."),
             *_header(config, name=f"{config.job_name}-shards", partition=config.partition, time=config.time,
                      gpus=config.gpus_per_task, log=f"{log_dir}/{config.job_name}-shards-%A_%a.out",
                      array=array_spec(pending, config.max_parallel)),
             *_environment(config, workdir),
             f': "${{{TASK_VARIABLE}:?is not set: submit this script with sbatch (or set it to a shard index)}}"',
             "# exec: Slurm's signals at the time limit reach Python (the request cache is flushed per batch).",
             "exec " + " ".join([shlex.quote(config.python), "-m", "llmrec_local.augment",
                                 *map(shlex.quote, task_argv), "--shard", f'"${{{TASK_VARIABLE}}}/{shards}"'])]
    return "\n".join(lines) + "\n"


def render_merge_script(config: SlurmConfig, *, merge_argv: Sequence[str], workdir: str, log_dir: str) -> str:
    """The merge job's script: ``<python> -m llmrec_local.augment merge <merge_argv>`` (no GPU)."""
    lines = ["#!/bin/bash",
             "# Generated by `python -m llmrec_local.augment slurm`: merges the complete shards into the artifacts",
             "# the later stages read. Submitted with --dependency=afterok:<array job id> (after every shard).",
             *_header(config, name=f"{config.job_name}-merge", partition=config.merge_partition or config.partition,
                      time=config.merge_time or config.time, gpus=0,
                      log=f"{log_dir}/{config.job_name}-merge-%j.out"),
             *_environment(config, workdir),
             "exec " + " ".join([shlex.quote(config.python), "-m", "llmrec_local.augment", "merge",
                                 *map(shlex.quote, merge_argv)])]
    return "\n".join(lines) + "\n"


def render_submit_script(array_script: str | None, merge_script: str) -> str:
    """``submit.sh``: submit the array, then the merge job depending on it (only the merge when no shard is left)."""
    lines = ["#!/bin/bash",
             "# Generated by `python -m llmrec_local.augment slurm`: the submission that `--submit` performs.",
             "set -euo pipefail"]
    if array_script is None:
        lines.append(f"sbatch --parsable {shlex.quote(merge_script)}")
    else:
        lines += [f"array_id=$(sbatch --parsable {shlex.quote(array_script)})",
                  "array_id=${array_id%%;*}  # --parsable prints <id> or <id>;<cluster>",
                  'echo "shard array: job ${array_id}"',
                  f'sbatch --parsable --dependency="afterok:${{array_id}}" {shlex.quote(merge_script)}']
    return "\n".join(lines) + "\n"


def unfinished_shards(config: AugmentConfig, dataset: str | Path, out: str | Path, *, shards: int,
                      candidates: str | Path | None, force: bool = False) -> list[int]:
    """Indices of the shards (of `shards`) with a job whose artifact is not complete for this config and inputs.

    A shard is done when `reusable` would let the runner skip every one of its jobs; a complete shard of another
    config or other inputs is an ArtifactError naming it (as when the shard is run by hand). `force`: none is done.
    """
    if shards < 2:
        raise ConfigError(f"--shards {shards}: a job array needs at least 2 shards; run the augment command itself "
                          "for one process")
    ds = load_dataset(dataset)
    # A job's settings do not depend on the shard, so the jobs are built once and only the config varies.
    base = replace(config, shard_index=0, shard_count=shards)
    jobs = build_jobs(base, ds, candidates)
    pending = []
    for i in range(shards):
        shard = replace(base, shard_index=i)
        for job, inputs in jobs:
            chash, digests = job_identity(job, shard, inputs)
            if not reusable(artifact_path(Path(out), job.name, shard), STAGE, chash, force=force, inputs=digests):
                pending.append(i)
                break
    return pending


def write_scripts(folder: str | Path, scripts: Mapping[str, str]) -> list[Path]:
    """Write ``{file name: text}`` into `folder` (executable) and create its ``logs/`` (sbatch does not create the
    folder of ``--output``: a missing one loses the log). Returns the paths written."""
    folder = Path(folder)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in scripts.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
        written.append(path)
    return written


@dataclass(frozen=True)
class Submitted:
    """Job ids returned by sbatch: the array's (None when every shard was complete) and the merge job's."""

    array_id: str | None
    merge_id: str


def _sbatch(exe: str, args: Sequence[str], timeout_s: float) -> str:
    cmd = [exe, "--parsable", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"`{shlex.join(cmd)}` did not answer within {timeout_s:g} s (is the Slurm controller "
                          "reachable from here?); retry, or submit by hand with submit.sh") from exc
    job_id = proc.stdout.strip().split(";")[0]
    if proc.returncode != 0 or not job_id.isdigit():
        raise ConfigError(f"`{shlex.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout}"
                          "; fix the option sbatch names (--partition, --account, --time, ... or [slurm]) and rerun")
    return job_id


def submit(array_script: Path | None, merge_script: Path, *, sbatch: str = "sbatch",
           timeout_s: float = 60.0) -> Submitted:
    """Submit the array (when there is one), then the merge job with ``--dependency=afterok:<array id>``.

    Raises ConfigError when `sbatch` is not on PATH (naming it), times out or refuses a script."""
    exe = shutil.which(sbatch)
    if exe is None:
        raise ConfigError(f"--submit needs Slurm's `{sbatch}` command, which is not on PATH here; run this on a "
                          f"login node of the cluster, or copy {merge_script.parent} there and run "
                          f"`bash {merge_script.parent / SUBMIT_SCRIPT}`")
    if array_script is None:
        return Submitted(None, _sbatch(exe, [str(merge_script)], timeout_s))
    array_id = _sbatch(exe, [str(array_script)], timeout_s)
    try:
        merge_id = _sbatch(exe, [f"--dependency=afterok:{array_id}", str(merge_script)], timeout_s)
    except ConfigError as exc:
        raise ConfigError(f"the shard array was submitted as job {array_id}, but the merge job was not: {exc}. "
                          f"Submit it by hand: sbatch --dependency=afterok:{array_id} {merge_script}") from exc
    return Submitted(array_id, merge_id)
