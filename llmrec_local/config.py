"""Typed, frozen configuration objects built strictly from TOML or dicts.

Every stage owns a frozen dataclass of its settings (``PrepareConfig``, ``TrainConfig``, ...). This module turns
plain mappings (a TOML table, CLI ``key=value`` overrides) into those dataclasses with type checks, and rejects
unknown keys with the list of valid ones: a typo in a recipe must fail loudly, never be silently ignored (RecBole's
untyped dict is the counter-example). ``config_hash`` is the stable identity used to skip finished stages.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .hashing import stable_hash

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`, converting only where lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        options = [a for a in args if a is not type(None)]
        if len(options) == 1 and dataclasses.is_dataclass(options[0]) and isinstance(value, Mapping):
            raise ConfigError(errors[0])  # an optional table: its own error names the bad key inside it
        raise ConfigError(f"{where}: {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return from_mapping(tp, value, where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return types.MappingProxyType({str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()})
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{where}: unsupported config type {_type_name(tp)}")  # a programming error in a dataclass


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build the frozen dataclass `cls` from `data`, checking every key and type.

    Unknown keys raise ConfigError listing the valid keys; missing keys take the dataclass default (or raise if
    the field has none). Nested dataclass fields accept nested tables.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}{did_you_mean(unknown, fields)}; valid keys are {sorted(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: required key {name!r} is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        # __post_init__ range checks raise ValueError; re-raise as a config error with the location.
        raise ConfigError(f"{where}: {exc}") from exc


def did_you_mean(unknown: Sequence[str], known: Iterable[str]) -> str:
    """`` (did you mean 'lr'?)`` for the closest known name of each unknown one, or "" when none is close: a typo in a
    recipe should be fixed in one reading of the error."""
    known = list(known)
    hints = [f"{name!r} -> {match[0]!r}" for name in unknown
             if (match := difflib.get_close_matches(name, known, n=1, cutoff=0.6))]
    if not hints:
        return ""
    if len(unknown) == 1:
        return f" (did you mean {hints[0].split(' -> ')[1]}?)"
    return f" (did you mean: {', '.join(hints)}?)"


def to_dict(obj: Any) -> Any:
    """Plain dict/list/scalar form of a config (tuples become lists, paths strings): TOML/JSON-ready."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


#: Field metadata of a setting added after configs of its class were first hashed: while it holds its default it
#: is left out of the hash, so adding it does not change the identity (and the reuse) of every existing artifact.
#: Use as ``field(default=..., metadata=ADDED_SETTING)``; the default must reproduce the behaviour from before the
#: setting existed, and changing that default later needs the metadata removed (so that hashes change with it).
ADDED_SETTING: Mapping[str, Any] = types.MappingProxyType({"hash_when_default": False})


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def hash_dict(obj: Any) -> Any:
    """`to_dict`, without the `ADDED_SETTING` fields that hold their default: what config hashes cover."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: hash_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("hash_when_default") is False and getattr(obj, f.name) == _default(f))}
    if isinstance(obj, Mapping):
        return {k: hash_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [hash_dict(v) for v in obj]
    return to_dict(obj)


def config_hash(obj: Any) -> str:
    """Stable 16-hex-digit identity of a config (equal configs, equal hashes, across processes and machines)."""
    return stable_hash(hash_dict(obj))


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; ConfigError with the line on a syntax error or a missing file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist; see recipes/README.md for the available recipes")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}") from exc


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``train.lr=1e-3`` into (["train", "lr"], 0.001); the value is parsed as TOML, else kept a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. train.epochs=5)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words such as `model=qwen2-7b` are strings
    return key.split("."), value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A deep copy of `data` with each ``dotted.key=value`` override set (validation happens in from_mapping)."""
    out = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a table")
            node = child
        node[path[-1]] = value
    return out


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def dump_toml(data: Mapping[str, Any]) -> str:
    """Minimal TOML writer for resolved configs (scalars, lists, nested tables); None values are omitted."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{ " + ", ".join(f"{_key(k)} = {scalar(x)}" for k, x in v.items() if x is not None) + " }"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def table(prefix: str, node: Mapping[str, Any]) -> None:
        plain = {k: v for k, v in node.items() if not isinstance(v, Mapping) and v is not None}
        nested = {k: v for k, v in node.items() if isinstance(v, Mapping)}
        if prefix and (plain or not nested):
            lines.append(f"\n[{prefix}]")
        for k, v in plain.items():
            lines.append(f"{_key(k)} = {scalar(v)}")
        for k, v in nested.items():
            table(f"{prefix}.{_key(k)}" if prefix else _key(k), v)

    table("", to_dict(data))
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else f'"{k}"'
