"""Scale-out: ``--shard i/N`` runs and the merge step.

Shard i of N handles the entities (users for pairs/profiles, items for attributes) with ``index % N == i``: disjoint,
balanced, and independent of the dataset's order. Each shard writes ``<out>/augment/<artifact>.shard-i-of-N`` and
its own cache file, so N processes (one vLLM engine per GPU or node) can share one output folder on a shared
filesystem. `merge` checks that all N shards are complete and were run with the same settings, and writes the
ordinary ``<out>/augment/<artifact>`` folder that the later stages read.

On a Ray cluster the same jobs run in one process with ``executor = "ray"`` (`llmrec_local.llm.pool`): one
artifact, no shards to merge. Slurm job arrays of shards: `llmrec_local.augment.slurm`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import polars as pl

from ..artifacts.augmentation import STAGE, read_job_tables, read_usage, write_failures, write_records, write_usage
from ..artifacts.base import SUMMARY_FILE, ArtifactWriter, read_manifest, reusable, write_summary
from ..errors import ArtifactError, ConfigError
from ..hashing import stable_hash
from .stage import ARTIFACTS

_SHARD_DIR = re.compile(r"^(?P<name>[a-z_]+)\.shard-(?P<i>\d+)-of-(?P<n>\d+)$")
#: manifest fields that must agree between the shards of one job
_SAME = ("job", "entity", "model", "template_versions", "sampling", "seed", "retries", "settings")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8); ConfigError unless 0 <= i < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"--shard {text!r} is not of the form i/N (e.g. 0/4 for the first of four shards)")
    i, n = int(match.group(1)), int(match.group(2))
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: need 0 <= i < N (shards are numbered from 0)")
    return i, n


def shard_dirs(out: Path, artifact: str) -> dict[int, tuple[int, Path]]:
    """{shard index: (shard count, folder)} of the shard folders of `artifact` under ``<out>/augment``."""
    found: dict[int, tuple[int, Path]] = {}
    root = Path(out) / "augment"
    for path in sorted(root.glob(f"{artifact}.shard-*-of-*")) if root.is_dir() else []:
        m = _SHARD_DIR.match(path.name)
        if m and m.group("name") == artifact:
            found[int(m.group("i"))] = (int(m.group("n")), path)
    return found


def merge(out: str | Path, jobs: tuple[str, ...], *, force: bool = False) -> dict[str, Path]:
    """Merge the complete shards of each job into ``<out>/augment/<artifact>``; returns {job: merged path}.

    Raises ArtifactError when a shard is missing or unfinished, shard counts disagree, shards were run with
    different settings, or two shards hold the same entity."""
    out = Path(out)
    merged: dict[str, Path] = {}
    for job in jobs:
        artifact = ARTIFACTS[job]
        found = shard_dirs(out, artifact)
        if not found:
            raise ArtifactError(f"no shard folders {artifact}.shard-i-of-N under {out / 'augment'}; run "
                                f"`python -m llmrec_local.augment ... --shard i/N` first")
        counts = {n for n, _ in found.values()}
        if len(counts) != 1:
            raise ArtifactError(f"{artifact}: shard folders from runs with different N {sorted(counts)} under "
                                f"{out / 'augment'}; remove the stale ones")
        n = counts.pop()
        missing = [i for i in range(n) if i not in found]
        if missing:
            raise ArtifactError(f"{artifact}: shards {missing} of {n} are missing; run them before merging")
        manifests = {}
        for i in range(n):
            try:
                manifests[i] = read_manifest(found[i][1])
            except ArtifactError as exc:
                raise ArtifactError(f"{artifact}: shard {i}/{n} is not finished ({exc}); rerun it (it resumes)") \
                    from exc
        first = manifests[0]
        for i, m in manifests.items():
            diff = [k for k in _SAME if m.get(k) != first.get(k)]
            if diff:
                raise ArtifactError(f"{artifact}: shard {i}/{n} was run with other {diff} than shard 0; rerun it "
                                    "with the same settings")
        chash = stable_hash(sorted(m["config_hash"] for m in manifests.values()))
        target = out / "augment" / artifact
        if reusable(target, STAGE, chash, force=force):
            merged[job] = target
            continue
        shards = [read_job_tables(found[i][1]) for i in range(n)]
        tables = {name: pl.concat([shard[name] for shard in shards]) for name in ("records", "failures", "responses")}
        entity = first["entity"]
        dup = tables["records"].filter(pl.col(entity).is_duplicated())
        if dup.height:
            raise ArtifactError(f"{artifact}: {entity} {dup[entity][0]} appears in two shards; shards must be "
                                "disjoint (were they run with different N?)")
        with ArtifactWriter(target, stage=STAGE, config_hash=chash) as w:
            write_failures(w.dir, tables["failures"].sort(["entity", "attempt"]))
            write_records(w.dir, w.manifest, tables["records"].sort(entity), tables["responses"].sort("cache_key"))
            total = Counter()
            tokens = Counter()
            for m in manifests.values():
                total.update({k: v for k, v in m["counts"].items() if isinstance(v, int)})
                tokens.update(m["tokens"])
            summed = dict(total)
            summed["valid_rate"] = summed["valid"] / summed["tasks"] if summed.get("tasks") else 0.0
            write_usage(w.dir, {"shards": [read_usage(found[i][1]) for i in range(n)]})
            reasons = Counter(tables["failures"]["reason"].to_list())
            write_summary(w.dir, "\n".join([
                f"# Augmentation job `{job}` ({artifact}), merged from {n} shards", "",
                f"- model: `{first['model']['model_id']}`, template {first['template_versions']}",
                f"- valid records: {summed.get('valid', 0)} of {summed.get('tasks', 0)} asked "
                f"(valid rate {summed['valid_rate']:.2%})",
                f"- requests: {summed.get('requests_total', 0)}; tokens: {dict(tokens)}",
                "- failure reasons: " + (", ".join(f"{r} ({c})" for r, c in reasons.most_common()) or "none"),
                "", "Per-shard summaries: " + ", ".join(f"`{found[i][1].name}/{SUMMARY_FILE}`" for i in range(n)), "",
            ]))
            w.manifest.update({k: first.get(k) for k in _SAME})
            w.manifest.update({"artifact": artifact, "counts": summed, "tokens": dict(tokens),
                               "shards": {str(i): {"path": str(found[i][1]), "config_hash": m["config_hash"]}
                                          for i, m in manifests.items()}})
        merged[job] = target
    return merged
