"""Stable content hashes for configs, files and request keys (the basis of skip-if-done and resume)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj.is_integer():
        # 1.0 and 1 must hash alike: TOML users write either.
        return int(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings (dataclasses become dicts)."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(obj: Any, length: int = 16) -> str:
    """First `length` hex digits of sha256(canonical_json(obj))."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Full sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


#: environment variable naming the project's cache folder (also used by the request cache)
CACHE_DIR_ENV = "LLMREC_CACHE_DIR"
#: file (inside the cache folder) that remembers file digests by (size, mtime_ns, inode)
FILE_HASH_CACHE = "file_sha256.json"


def default_cache_dir() -> Path:
    """``$LLMREC_CACHE_DIR``, else ``~/.cache/llmrec_local``."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llmrec_local"


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def cached_file_sha256s(paths: Sequence[str | Path], cache_file: str | Path | None = None) -> dict[Path, str]:
    """sha256 of each file, reusing digests remembered in `cache_file` while (size, mtime_ns, inode) is unchanged.

    Multi-GB weights are read once per copy: a later call costs one ``stat`` per file. Replacing a file (copy over
    it, ``mv`` another one in place) changes its mtime or inode and forces a re-read. The cache is a JSON object
    ``{absolute path: [size, mtime_ns, inode, sha256]}`` (default: ``default_cache_dir() / FILE_HASH_CACHE``),
    written atomically; an unreadable or unwritable cache only costs the re-reads, never a wrong answer.

    Returns:
        {resolved path: sha256 hex digest}, in the order given.
    """
    cache_path = Path(cache_file) if cache_file is not None else default_cache_dir() / FILE_HASH_CACHE
    try:
        cache: dict[str, list[Any]] = json.loads(cache_path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    digests: dict[Path, str] = {}
    changed = False
    for given in paths:
        path = Path(given).resolve()
        key = _stat_key(path)
        entry = cache.get(str(path))
        if isinstance(entry, list) and len(entry) == 4 and entry[:3] == key:
            digests[path] = str(entry[3])
            continue
        digests[path] = file_sha256(path)
        # stat again: a file rewritten while it was read must not be remembered under the new key
        if _stat_key(path) == key:
            cache[str(path)] = [*key, digests[path]]
            changed = True
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_name(f"{cache_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, sort_keys=True))
            os.replace(tmp, cache_path)
        except OSError:
            pass  # read-only home or cache: digests stay correct, only the next call re-reads
    return digests


def weight_files_hash(files: Sequence[str | Path], root: str | Path | None = None, length: int = 16,
                      cache_file: str | Path | None = None) -> str:
    """Identity of a model's weights: hash of each file's name and full sha256 (cached, see
    `cached_file_sha256s`). Used by the model registry's fingerprint, kit manifests and request caches, so that
    swapped weights of the same size give another identity.

    Args:
        files: the weight files.
        root: names are taken relative to this folder (default: the bare file names).
        length: hex digits of the result.
        cache_file: digest cache (default: under `default_cache_dir()`).
    """
    digests = cached_file_sha256s(files, cache_file)
    base = Path(root).resolve() if root is not None else None
    items = sorted((p.relative_to(base).as_posix() if base else p.name, d) for p, d in digests.items())
    return stable_hash(items, length)
