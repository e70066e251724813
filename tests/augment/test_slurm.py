"""Slurm job arrays: the generated scripts against golden files, the options' checks, the array's tasks and the merge
job run here with bash (no Slurm) against a single-process run, resubmission of unfinished shards only, submission
through a stand-in sbatch and without one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from testkit.fakes import FakeBackend, valid_text

from llmrec_local.artifacts.augmentation import read_job_tables
from llmrec_local.augment import AugmentConfig, augment
from llmrec_local.augment.__main__ import build_config, main, run_parser
from llmrec_local.augment.slurm import (
    ARRAY_SCRIPT,
    MERGE_SCRIPT,
    SUBMIT_SCRIPT,
    SlurmConfig,
    array_spec,
    render_array_script,
    render_merge_script,
    render_submit_script,
    slurm_config,
    submit,
)
from llmrec_local.augment.stage import ARTIFACTS
from llmrec_local.errors import ArtifactError, ConfigError

GOLDEN = Path(__file__).parent / "golden"

#: A lab's cluster as a user would describe it (every option set, one value that needs shell quoting).
EXAMPLE = SlurmConfig(partition="gpu", account="lab42", time="04:00:00", gpus_per_task=1, cpus_per_task=8, mem="64G",
                      env_setup=("module load cuda/12.1", "source /scratch/lab/venvs/llmrec/bin/activate"),
                      models_dir="/scratch/lab/models", sbatch_options=("--qos=normal",), merge_partition="cpu",
                      merge_time="00:30:00")
EXAMPLE_ARGV = ["--model", "qwen2-7b", "--data", "/scratch/lab/ml 10m/dataset", "--set", "pairs.temperature=0.8",
                "--out", "/scratch/lab/ml10m", "--no-progress"]


def example_scripts() -> dict[str, str]:
    """The three files of a first submission of 4 shards (all pending) for `EXAMPLE`."""
    logs, folder = "/scratch/lab/ml10m/slurm/logs", "/scratch/lab/ml10m/slurm"
    return {
        "slurm-shards.sbatch": render_array_script(EXAMPLE, task_argv=EXAMPLE_ARGV, shards=4, pending=[0, 1, 2, 3],
                                                   workdir="/scratch/lab/llmrec", log_dir=logs),
        "slurm-merge.sbatch": render_merge_script(EXAMPLE, merge_argv=["--out", "/scratch/lab/ml10m", "--jobs",
                                                                       "pairs,attributes,profiles"],
                                                  workdir="/scratch/lab/llmrec", log_dir=logs),
        "slurm-submit.sh": render_submit_script(f"{folder}/{ARRAY_SCRIPT}", f"{folder}/{MERGE_SCRIPT}"),
    }


@pytest.mark.parametrize("name", sorted(example_scripts()))
def test_scripts_match_golden_files(name: str) -> None:
    golden, text = GOLDEN / name, example_scripts()[name]
    if os.environ.get("LLMREC_UPDATE_GOLDEN") == "1":  # an intended change of the scripts: rewrite, then review
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), (
        f"the generated {name} changed; if intended, rerun with LLMREC_UPDATE_GOLDEN=1 and review the diff")


def test_array_script_requests_and_runs_each_shard() -> None:
    text = example_scripts()["slurm-shards.sbatch"]
    assert "#SBATCH --array=0-3\n" in text and "#SBATCH --gpus-per-task=1\n" in text
    assert "export LLMREC_MODELS_DIR=/scratch/lab/models\n" in text and "export HF_HUB_OFFLINE=1\n" in text
    assert "'/scratch/lab/ml 10m/dataset'" in text  # shlex-quoted: one argument on the task's command line
    assert text.rstrip().endswith('--shard "${SLURM_ARRAY_TASK_ID}/4"')
    merge = example_scripts()["slurm-merge.sbatch"]
    assert "#SBATCH --partition=cpu\n" in merge and "gpus" not in merge and "--array" not in merge


def test_array_spec_collapses_runs_and_throttles() -> None:
    assert array_spec([0, 1, 2, 3]) == "0-3"
    assert array_spec([3, 1]) == "1,3"
    assert array_spec([0, 1, 2, 5, 7, 8], max_parallel=2) == "0-2,5,7-8%2"


@pytest.mark.parametrize("table,match", [
    ({"partition": "gpu\n#SBATCH --qos=top"}, "partition=.* not a valid Slurm value"),
    ({"time": "4 hours"}, "time='4 hours'"), ({"mem": "lots"}, "mem='lots'"),
    ({"gpus_per_task": -1}, "gpus_per_task=-1"), ({"env_setup": ["module load a\nrm -rf x"]}, "one non-empty line"),
    ({"sbatch_options": ["qos=high"]}, "--name=value"), ({"gpu": 1}, r"unknown key\(s\) \['gpu'\]"),
])
def test_bad_options_name_the_value_and_the_fix(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        slurm_config(table)


def test_dry_run_prints_the_scripts_and_writes_nothing(dataset_path: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    out, lab = tmp_path / "o", tmp_path / "lab.toml"
    lab.write_text('[slurm]\npartition = "gpu"\ntime = "08:00:00"\nenv_setup = ["module load cuda"]\n')
    assert main(["slurm", "--shards", "4", "--data", str(dataset_path), "--out", str(out), "--model", "smoke",
                 "--jobs", "attributes,profiles", "--slurm-config", str(lab), "--time", "01:00:00", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    # the [slurm] table gives the defaults, a flag overrides one
    assert "#SBATCH --partition=gpu\n#SBATCH" in printed and "#SBATCH --time=01:00:00\n" in printed
    assert "08:00:00" not in printed and "\nmodule load cuda\n" in printed
    assert f"==> {out / 'slurm' / ARRAY_SCRIPT} <==" in printed and f"==> {out / 'slurm' / MERGE_SCRIPT} <==" in printed
    assert "#SBATCH --array=0-3\n" in printed and "merge --out" in printed and "--jobs attributes,profiles" in printed
    assert not out.exists()


def test_pairs_need_candidates_built_before_the_array(dataset_path: Path, tmp_path: Path) -> None:
    argv = ["slurm", "--shards", "2", "--data", str(dataset_path), "--out", str(tmp_path), "--dry-run"]
    with pytest.raises(ConfigError, match=r"needs a complete candidates artifact at .*augment candidates --data"):
        main(argv)
    with pytest.raises(ConfigError, match="built once before the array"):
        main([*argv, "--base-run", str(tmp_path / "run")])


def test_shard_flag_and_single_shard_are_refused(dataset_path: Path, tmp_path: Path) -> None:
    argv = ["slurm", "--data", str(dataset_path), "--out", str(tmp_path), "--jobs", "attributes", "--dry-run"]
    with pytest.raises(ConfigError, match=r"--shard is set per array task"):
        main([*argv, "--shards", "2", "--shard", "0/2"])
    with pytest.raises(ConfigError, match="at least 2 shards"):
        main([*argv, "--shards", "1"])


def _fake_sbatch(folder: Path, job_id: int) -> Path:
    """An executable `sbatch` that logs its arguments and answers like ``sbatch --parsable``."""
    folder.mkdir(exist_ok=True)
    script = folder / "sbatch"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder}/calls\necho "{job_id};cluster"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_submit_without_sbatch_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"--submit needs Slurm's `sbatch` command, which is not on PATH"):
        submit(tmp_path / ARRAY_SCRIPT, tmp_path / MERGE_SCRIPT)


def test_submit_chains_the_merge_after_the_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _fake_sbatch(bin_dir, 4711)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ids = submit(tmp_path / ARRAY_SCRIPT, tmp_path / MERGE_SCRIPT)
    assert (ids.array_id, ids.merge_id) == ("4711", "4711")
    calls = (bin_dir / "calls").read_text().splitlines()
    assert calls == [f"--parsable {tmp_path / ARRAY_SCRIPT}",
                     f"--parsable --dependency=afterok:4711 {tmp_path / MERGE_SCRIPT}"]
    assert submit(None, tmp_path / MERGE_SCRIPT).array_id is None  # nothing left to run: the merge alone


# Short values keep the random smoke model's answers quick on 2 cores. batch_size 1: the transformers backend seeds
# torch once per micro-batch, so only single-request batches make a shard's answers independent of which other
# requests share its batches (vLLM seeds each request itself).
SMOKE_ARGV = ["--model", "smoke", "--backend", "transformers", "--batch-size", "1", "--max-retries", "1",
              "--set", "history_max_chars=600", "--set", "max_value_chars=16", "--set", "max_list_items=2",
              "--set", "profiles.max_tokens=200"]


def _run_tasks(script: Path, tasks: list[int]) -> None:
    """What Slurm would do with the array: run the script once per task index, with SLURM_ARRAY_TASK_ID set."""
    procs = [subprocess.Popen(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in tasks]
    for i, proc in zip(tasks, procs):
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, f"array task {i} failed:\n{output[-3000:]}"


def _array_of(script: Path) -> str:
    return next(line.split("=", 1)[1] for line in script.read_text().splitlines() if line.startswith("#SBATCH --array"))


@pytest.mark.parametrize("jobs,shards,first", [
    ("pairs", 2, [0]),
    pytest.param("pairs,attributes,profiles", 3, [0, 2], marks=[pytest.mark.slow, pytest.mark.extended],
                 id="all-jobs-task-1-fails"),
])
def test_array_tasks_and_merge_run_locally_equal_a_single_process_run(
        jobs: str, shards: int, first: list[int], dataset_path: Path, candidates_path: Path, smoke_models_dir: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The generated scripts executed as Slurm would (tasks `first` first; any other task "failed" and is run after
    the resubmission), then the merge job: the records equal those of one process running the same command."""
    argv = [*SMOKE_ARGV, "--jobs", jobs, "--data", str(dataset_path), "--candidates", str(candidates_path)]
    single = tmp_path / "single"
    assert main([*argv, "--out", str(single), "--models-dir", str(smoke_models_dir), "--no-progress"]) == 0
    out = tmp_path / "sharded"
    generate = ["slurm", "--shards", str(shards), *argv, "--out", str(out), "--models-dir", str(smoke_models_dir),
                "--gpus-per-task", "0", "--python", sys.executable, "--env-setup", "export OMP_NUM_THREADS=1"]
    assert main(generate) == 0
    folder = out / "slurm"
    assert _array_of(folder / ARRAY_SCRIPT) == array_spec(range(shards))
    _run_tasks(folder / ARRAY_SCRIPT, first)
    rest = [i for i in range(shards) if i not in first]
    if rest:
        capsys.readouterr()
        assert main(generate) == 0  # the resubmission
        assert (f"shards {array_spec(first)} of {shards} are complete for this config: the array runs only shards "
                f"{array_spec(rest)}") in capsys.readouterr().out
        assert _array_of(folder / ARRAY_SCRIPT) == array_spec(rest)
        _run_tasks(folder / ARRAY_SCRIPT, rest)
    merged = subprocess.run(["bash", str(folder / MERGE_SCRIPT)], capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr[-3000:]
    for job in jobs.split(","):
        ours = read_job_tables(out / "augment" / ARTIFACTS[job])
        theirs = read_job_tables(single / "augment" / ARTIFACTS[job])
        entity = ours["records"].columns[0]
        assert ours["records"].height == theirs["records"].height > 0, job
        assert ours["records"].sort(entity).equals(theirs["records"].sort(entity)), job
        assert ours["responses"].sort("cache_key").equals(theirs["responses"].sort("cache_key")), job


def test_resubmission_lists_only_unfinished_shards(dataset_path: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    argv = ["--model", "smoke", "--jobs", "attributes,profiles", "--data", str(dataset_path), "--out", str(tmp_path)]
    generate = ["slurm", "--shards", "4", *argv]
    config = build_config(run_parser().parse_args(argv))

    def run_shard(i: int, cfg: AugmentConfig = config) -> None:  # what array task i leaves behind
        augment(replace(cfg, shard_index=i, shard_count=4), dataset_path, tmp_path, backend=FakeBackend(valid_text),
                progress=False)

    for i in (0, 2):
        run_shard(i)
    run_shard(3, replace(config, jobs=("attributes",)))  # task 3 died between its two jobs
    assert main(generate) == 0
    assert "shards 0,2 of 4 are complete for this config: the array runs only shards 1,3" in capsys.readouterr().out
    assert _array_of(tmp_path / "slurm" / ARRAY_SCRIPT) == "1,3"
    assert main([*generate, "--max-parallel", "1", "--dry-run"]) == 0
    assert "#SBATCH --array=1,3%1\n" in capsys.readouterr().out
    for i in (1, 3):
        run_shard(i)
    assert main(generate) == 0
    assert "all 4 shards are complete for this config: only the merge job is needed" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "slurm").iterdir()) == ["augment-merge.sbatch", "logs", "submit.sh"]
    assert "--dependency" not in (tmp_path / "slurm" / SUBMIT_SCRIPT).read_text()
    with pytest.raises(ArtifactError, match="config hash"):  # a shard of another config is never counted as done
        main([*generate, "--seed", "7"])
