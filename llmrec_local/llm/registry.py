"""Model alias registry: turn an alias (``qwen2-7b``) or a path into a complete local model folder, never a download.

The registry lives in ``recipes/models.toml`` (``[models.<alias>]`` tables: kind, expected folder name, source, chat
template notes, recommended settings, optional sha256 of files). `resolve_model` looks for the folder in this order:

1. ``name_or_path`` itself when it is an existing path;
2. the ``models_dir`` argument (the CLI's ``--models-dir``);
3. the environment variable ``LLMREC_MODELS_DIR``;
4. ``~/models``;

and checks that each candidate holds what its kind needs (LLM: config, tokenizer, weights; text embedder: a
sentence-transformers folder; image encoder: an open_clip folder or a checkpoint file). A miss raises
`ModelNotFoundError` listing every place looked at, why each one failed, and how to place the weights. A folder with
a ``SHA256SUMS`` file (every model in an offline kit has one) is checked against it on every load; digests are cached
by (size, mtime, inode), so only the first load of a copy reads the weights. On success offline mode is forced
(``HF_HUB_OFFLINE=1``), so no library below us can reach the hub either.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..compat import force_offline
from ..config import from_mapping, load_toml
from ..errors import ConfigError, ModelNotFoundError
from ..hashing import cached_file_sha256s, file_sha256, stable_hash, weight_files_hash

log = logging.getLogger(__name__)

ModelKind = Literal["llm", "text_embedder", "image_encoder"]
KINDS: tuple[str, ...] = ("llm", "text_embedder", "image_encoder")
MODELS_DIR_ENV = "LLMREC_MODELS_DIR"
REGISTRY_ENV = "LLMREC_MODEL_REGISTRY"
#: optional file inside a model folder: lines ``<sha256>  <relative path>`` (the output of ``sha256sum``)
MANIFEST_NAME = "SHA256SUMS"

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "tekken.json")


@dataclass(frozen=True)
class ModelEntry:
    """One ``[models.<alias>]`` table of the registry."""

    kind: ModelKind
    folder: str
    source: str = ""
    chat_template: str = ""
    notes: str = ""
    build: str = ""
    sha256: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedModel:
    """A complete local model folder.

    Attributes:
        alias: registry alias, or the folder name for an unregistered path.
        path: absolute path of the folder (or of the checkpoint file for a bare image-encoder checkpoint).
        kind: "llm", "text_embedder" or "image_encoder".
        settings: recommended settings from the registry (empty for unregistered paths).
        model_id: ``"<alias>@<fingerprint>"``; the fingerprint hashes config/tokenizer contents and the weight
            files' names and sha256 (`llmrec_local.hashing.weight_files_hash`, cached by size, mtime and inode, so
            gigabytes are read once per copy), so cache keys change when the weights are replaced.
    """

    alias: str
    path: Path
    kind: str
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    model_id: str = ""


def default_registry_path() -> Path:
    """``$LLMREC_MODEL_REGISTRY`` or the repository's ``recipes/models.toml``."""
    env = os.environ.get(REGISTRY_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "recipes" / "models.toml"


def load_registry(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Read the alias registry. An explicit `path` must exist; the default one may be missing (e.g. an installed
    package without the repository), which gives an empty registry: explicit model paths still work."""
    explicit = path is not None
    reg_path = Path(path) if explicit else default_registry_path()
    if not reg_path.is_file():
        if explicit or os.environ.get(REGISTRY_ENV):
            raise ConfigError(f"model registry {reg_path} does not exist; pass the path of a models.toml "
                              f"(the repository ships recipes/models.toml)")
        log.warning("model registry %s not found; only explicit model paths can be resolved", reg_path)
        return {}
    data = load_toml(reg_path)
    unknown = set(data) - {"models"}
    if unknown:
        raise ConfigError(f"{reg_path}: unknown top-level keys {sorted(unknown)}; only [models.<alias>] tables")
    entries: dict[str, ModelEntry] = {}
    for alias, table in data.get("models", {}).items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"{reg_path}: models.{alias} must be a table")
        entry = from_mapping(ModelEntry, table, where=f"{reg_path}: models.{alias}")
        # from_mapping freezes mappings; keep plain dicts so callers can merge settings freely
        entries[alias] = ModelEntry(**{**entry.__dict__, "sha256": dict(entry.sha256),
                                       "settings": dict(entry.settings)})
    return entries


def _weights_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES
                  and not p.name.startswith("training_args"))


def _missing_shards(folder: Path) -> list[str]:
    """Shards named by a ``*.index.json`` weight map but absent (an interrupted copy of a sharded model)."""
    missing: set[str] = set()
    for index in folder.glob("*.index.json"):
        try:
            weight_map = json.loads(index.read_text()).get("weight_map", {})
        except (OSError, json.JSONDecodeError) as exc:
            missing.add(f"{index.name} (unreadable: {exc})")
            continue
        missing.update(name for name in set(weight_map.values()) if not (folder / name).is_file())
    return sorted(missing)


def check_model_folder(path: Path, kind: str) -> list[str]:
    """What `path` lacks to be a usable model of `kind` (empty list = complete)."""
    if kind not in KINDS:
        raise ConfigError(f"model kind {kind!r} is not one of {list(KINDS)}")
    if not path.exists():
        return ["does not exist"]
    if path.is_file():
        if kind == "image_encoder" and path.suffix in _WEIGHT_SUFFIXES:
            return []
        return [f"is a file, expected a {kind} folder"]
    problems: list[str] = []
    weights = _weights_in(path)
    if kind == "llm":
        if not (path / "config.json").is_file():
            problems.append("no config.json")
        if not any((path / name).is_file() for name in _TOKENIZER_FILES):
            problems.append(f"no tokenizer file (one of {', '.join(_TOKENIZER_FILES)})")
        if not weights:
            problems.append("no weights (*.safetensors or *.bin)")
    elif kind == "text_embedder":
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            problems.append("no modules.json or config.json (not a sentence-transformers folder)")
        # sentence-transformers may keep the transformer in a numbered sub-module folder
        if not weights and not any(_weights_in(p) for p in path.iterdir() if p.is_dir()):
            problems.append("no weights (*.safetensors or *.bin)")
    else:
        if not (path / "open_clip_config.json").is_file():
            problems.append("no open_clip_config.json (or pass the checkpoint file itself)")
        if not weights:
            problems.append("no weights (open_clip_model.safetensors or open_clip_pytorch_model.bin)")
    problems.extend(f"missing shard {name}" for name in _missing_shards(path))
    return problems


def _read_manifest(folder: Path) -> dict[str, str]:
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    expected: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, name = line.strip().partition(" ")
            expected[name.strip().lstrip("*")] = digest.lower()
    return expected


def verify_model_hashes(path: Path, expected: Mapping[str, str]) -> None:
    """Check files against sha256 digests (registry ``sha256`` table merged with the folder's SHA256SUMS)."""
    expected = {**expected, **_read_manifest(path)} if path.is_dir() else dict(expected)
    if not expected:
        raise ModelNotFoundError(
            f"verify_hashes was requested for {path} but no digests are known: add a [models.<alias>.sha256] table "
            f"to the registry or a {MANIFEST_NAME} file (`sha256sum * > {MANIFEST_NAME}`) to the folder")
    targets = {name: path / name if path.is_dir() else path for name in expected}
    for name, target in sorted(targets.items()):
        if not target.is_file():
            raise ModelNotFoundError(f"{target} is listed with a sha256 but missing; copy the complete model folder")
    # cached by (size, mtime, inode): a verified 15 GB model costs a stat per file on the next load
    actual_by_path = cached_file_sha256s(list(targets.values()))
    for name, digest in sorted(expected.items()):
        target = targets[name]
        actual = actual_by_path[target.resolve()]
        if actual != digest.lower():
            raise ModelNotFoundError(f"{target}: sha256 {actual} != expected {digest}; the file is corrupt or a "
                                     f"different revision; copy it again from the source")


def _fingerprint(path: Path) -> str:
    if path.is_file():
        return stable_hash([path.name, weight_files_hash([path])], 12)
    parts: list[Any] = []
    for name in ("config.json", "modules.json", "open_clip_config.json", "tokenizer.json", "tokenizer_config.json"):
        if (path / name).is_file():
            parts.append([name, file_sha256(path / name)])
    parts.append(["weights", weight_files_hash(_weights_in(path), root=path)])
    return stable_hash(parts, 12)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _how_to_place(entry: ModelEntry | None, name: str, roots: list[Path]) -> str:
    target = roots[0] if roots else Path("~/models")
    if entry is not None and entry.build:
        return f"build it locally with `{entry.build}` (or into {target / entry.folder})"
    folder = entry.folder if entry else name.rsplit("/", 1)[-1]
    source = entry.source if entry and entry.source else (name if _HUB_ID.match(name) else "<hub id>")
    return (f"on a machine with internet access run `hf download {source} --local-dir {folder}` (older "
            f"huggingface_hub releases: `huggingface-cli download`), copy the folder to {target / folder} on this "
            f"machine, and pass --models-dir or set {MODELS_DIR_ENV}; or pass the folder's path directly")


def model_roots(models_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The models directories searched, in order, each with where it came from."""
    roots: list[tuple[str, Path]] = []
    if models_dir is not None:
        roots.append(("--models-dir", Path(models_dir).expanduser()))
    if os.environ.get(MODELS_DIR_ENV):
        roots.append((f"${MODELS_DIR_ENV}", Path(os.environ[MODELS_DIR_ENV]).expanduser()))
    roots.append(("~/models", Path.home() / "models"))
    return roots


def resolve_model(name_or_path: str, *, kind: ModelKind = "llm",
                  models_dir: str | Path | None = None, verify_hashes: bool = False) -> ResolvedModel:
    """Resolve an alias or a path to a complete local model folder (see the module docstring for the order).

    Raises:
        ModelNotFoundError: nothing complete was found; the message lists every place looked and how to fix it.
        ConfigError: `kind` is unknown, or the alias is registered as another kind.
    """
    if kind not in KINDS:
        raise ConfigError(f"model kind {kind!r} is not one of {list(KINDS)}")
    registry = load_registry()
    looked: list[str] = []
    entry: ModelEntry | None = None
    alias = name_or_path

    direct = Path(name_or_path).expanduser()
    if direct.exists():
        problems = check_model_folder(direct, kind)
        if problems:
            raise ModelNotFoundError(f"{direct} is not a usable {kind} folder: {'; '.join(problems)}. "
                                     f"Copy the complete model folder (config, tokenizer and weight files)")
        # an unregistered path keeps its own folder name as alias; a registered folder name picks up its settings
        by_folder = {e.folder: (a, e) for a, e in registry.items() if e.kind == kind}
        alias, entry = by_folder.get(direct.resolve().name, (direct.resolve().name, None))
        return _resolved(alias, direct.resolve(), kind, entry, verify_hashes)

    looked.append(f"{direct} (as a path): does not exist")
    entry = registry.get(name_or_path)
    if entry is None:  # a hub id of a registered model names the same folder
        entry_alias = next((a for a, e in registry.items() if e.source == name_or_path and e.kind == kind), None)
        if entry_alias is not None:
            alias, entry = entry_alias, registry[entry_alias]
    if entry is not None and entry.kind != kind:
        raise ConfigError(f"model alias {name_or_path!r} is a {entry.kind} in the registry, not a {kind}")
    folder_name = entry.folder if entry else name_or_path
    roots = model_roots(models_dir)
    for origin, root in roots:
        candidate = root / folder_name
        problems = check_model_folder(candidate, kind)
        if not problems:
            return _resolved(alias if entry else Path(folder_name).name, candidate.resolve(), kind, entry,
                             verify_hashes)
        looked.append(f"{candidate} (from {origin}): {'; '.join(problems)}")

    if entry is None and _HUB_ID.match(name_or_path) and "/" in name_or_path:
        what = (f"{name_or_path!r} looks like a Hugging Face hub id and is not a local folder; llmrec_local never "
                f"downloads models")
    elif entry is None:
        known = ", ".join(a for a, e in registry.items() if e.kind == kind) or "(registry empty)"
        what = f"{name_or_path!r} is neither an existing path nor a registered {kind} alias (known: {known})"
    elif alias != name_or_path:
        what = (f"{name_or_path!r} is a Hugging Face hub id (registered as alias {alias!r}) and llmrec_local never "
                f"downloads models; no complete local folder {entry.folder!r} was found")
    else:
        what = f"no complete folder {entry.folder!r} for {kind} alias {alias!r}"
    places = "\n  ".join(looked)
    raise ModelNotFoundError(f"{what}.\nLooked in:\n  {places}\nTo fix: "
                             f"{_how_to_place(entry, name_or_path, [r for _, r in roots])}")


def _resolved(alias: str, path: Path, kind: str, entry: ModelEntry | None, verify_hashes: bool) -> ResolvedModel:
    # A folder that carries its own digests (a kit, or `sha256sum * > SHA256SUMS`) is always checked on load.
    if verify_hashes or (path.is_dir() and (path / MANIFEST_NAME).is_file()):
        verify_model_hashes(path, entry.sha256 if entry else {})
    force_offline()
    settings = dict(entry.settings) if entry else {}
    return ResolvedModel(alias=alias, path=path, kind=kind, settings=settings,
                         model_id=f"{alias}@{_fingerprint(path)}")
