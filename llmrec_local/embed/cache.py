"""The shared embedding cache: one content-keyed store of vectors for every workdir on the machine.

Layout (under :func:`embedding_cache_dir`: ``embed.cache_dir``, else ``$LLMREC_EMBED_CACHE_DIR``, else
``<cache dir>/embeddings`` where the cache dir is ``$LLMREC_CACHE_DIR`` or ``~/.cache/llmrec_local``)::

    <root>/<encoder key>/<segment>.npz     keys (m,) str, vectors (m, dim) float32

The encoder key is the hash of the encoder's identity (weights sha256, dtype, max_seq_length, normalisation; see
``TextEncoder.key``), and a row's key is ``sha256(encoder key, text)`` (or the image file's sha256), so a vector
is found again for the same text under the same weights, whatever the workdir, dataset or source.

Concurrency: a writer never modifies a file. Each :meth:`EmbeddingCache.save` writes the rows it added as a new
segment under a unique name (written to a hidden temporary file, then renamed into place, which is atomic), so any
number of processes may read and write the same folder; two writers that encode the same text both store it and
either copy serves later readers (the vectors are equal). Past :data:`COMPACT_AT` segments, a save merges the
segments it read into one and removes them; a reader that meets a segment removed meanwhile skips it, which only
costs re-encoding. A damaged segment is skipped with a warning, never an error.

Vectors are stored as float32 and the embed stage builds every artifact from the cache (after adding what it
encoded), so an artifact's bytes are the same whether its rows were encoded now or found here.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..hashing import default_cache_dir

log = logging.getLogger(__name__)

#: environment variable naming the shared embedding cache folder (overrides ``<cache dir>/embeddings``)
EMBED_CACHE_ENV = "LLMREC_EMBED_CACHE_DIR"
SEGMENT_SUFFIX = ".npz"
#: number of segments of one encoder above which a save merges them into one
COMPACT_AT = 32


def embedding_cache_dir(configured: str | Path | None = None) -> Path:
    """The shared cache's root: `configured` (``embed.cache_dir``), else ``$LLMREC_EMBED_CACHE_DIR``, else
    ``default_cache_dir() / "embeddings"``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get(EMBED_CACHE_ENV)
    return Path(env).expanduser() if env else default_cache_dir() / "embeddings"


def _segments(folder: Path) -> list[Path]:
    """Finished segment files of one encoder (hidden names are segments still being written)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SEGMENT_SUFFIX and not p.name.startswith("."))


def _read_segment(file: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(keys (m,), vectors (m, dim)) of one segment, or None when it is gone or unreadable."""
    try:
        with np.load(file) as data:
            keys, vectors = data["keys"], data["vectors"]
        if len(keys) != len(vectors) or vectors.ndim != 2:
            raise ValueError(f"{len(keys)} keys, vectors of shape {vectors.shape}")
    except FileNotFoundError:
        return None  # merged away by another process after we listed it
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.warning("ignoring unreadable embedding cache segment %s (%s); its rows will be re-encoded", file, exc)
        return None
    return keys, np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """The vectors of one encoder: row key (32 hex) -> float32 vector, read from every segment of
    ``<root>/<encoder_key>/`` and extended by :meth:`add` + :meth:`save` (one new segment per save)."""

    def __init__(self, root: str | Path, encoder_key: str) -> None:
        self.folder = Path(root) / encoder_key
        self._index: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._read: list[Path] = []
        self._pending: list[str] = []
        for file in _segments(self.folder):
            segment = _read_segment(file)
            if segment is None:
                continue
            self._read.append(file)
            self._append([str(k) for k in segment[0]], segment[1])

    def _append(self, keys: Sequence[str], vectors: np.ndarray) -> list[str]:
        """Index the rows of `keys` not yet known; returns those keys (their vectors are appended in order)."""
        new = [i for i, k in enumerate(keys) if k not in self._index]
        if new:
            start = len(self._index)
            for offset, i in enumerate(new):
                self._index[keys[i]] = start + offset
            self._blocks.append(np.asarray(vectors[new], dtype=np.float32))
        return [keys[i] for i in new]

    def __len__(self) -> int:
        return len(self._index)

    @property
    def dim(self) -> int | None:
        return next((int(v.shape[1]) for v in self._blocks if len(v)), None)

    def _table(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0]

    def get(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found bool (n,), vectors (n_found, dim) of the found keys in order)."""
        rows = np.array([self._index.get(k, -1) for k in keys], dtype=np.int64)
        found = rows >= 0
        if not found.any():
            return found, np.zeros((0, self.dim or 0), dtype=np.float32)
        return found, self._table()[rows[found]]

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Remember `vectors` (n, dim) under `keys` (n,); written by the next :meth:`save`."""
        self._pending.extend(self._append(list(keys), vectors))

    def save(self) -> None:
        """Write the rows added since the last save as one new segment (atomically); compact when the folder
        holds more than :data:`COMPACT_AT` segments. An unwritable cache only costs re-encoding later."""
        if not self._pending:
            return
        compact = len(self._read) + 1 > COMPACT_AT
        keys = list(self._index) if compact else self._pending
        table = self._table()
        rows = np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))
        try:
            written = self._write(np.array(keys), table[rows])
        except OSError as exc:
            log.warning("could not write the embedding cache %s (%s); the vectors are not cached", self.folder, exc)
            return
        self._pending = []
        if compact:
            for old in self._read:
                old.unlink(missing_ok=True)
            self._read = [written]
        else:
            self._read.append(written)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Unique per process and call: concurrent writers never pick the same name.
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=keys, vectors=np.ascontiguousarray(vectors, dtype=np.float32))
            os.replace(tmp, self.folder / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.folder / name


def cache_report(root: str | Path) -> dict[str, Any]:
    """Size of the shared cache: ``{"root", "bytes", "entries", "encoders": {key: {"segments", "entries",
    "dim", "bytes"}}}`` (entries count stored rows, a text stored by two writers counts twice)."""
    root = Path(root)
    encoders: dict[str, Any] = {}
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            files = _segments(folder)
            entries, dim = 0, None
            for file in files:
                segment = _read_segment(file)
                if segment is not None:
                    entries += len(segment[0])
                    dim = int(segment[1].shape[1])
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            encoders[folder.name] = {"segments": len(files), "entries": entries, "dim": dim, "bytes": size}
    return {"root": str(root), "bytes": sum(e["bytes"] for e in encoders.values()),
            "entries": sum(e["entries"] for e in encoders.values()), "encoders": encoders}


def clear_cache(root: str | Path, encoder_key: str | None = None) -> int:
    """Delete the cached vectors of one encoder (or of all); returns the bytes freed. Running embed stages are
    not harmed: a segment that vanishes under a reader is re-encoded."""
    root = Path(root)
    if encoder_key:
        folders = [root / encoder_key]
    else:
        folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    freed = 0
    for folder in folders:
        if folder.is_dir():
            freed += sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return freed
