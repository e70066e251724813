"""Strict config loading: unknown keys, types, ranges, overrides and hashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from llmrec_local.config import (
    apply_overrides,
    config_hash,
    dump_toml,
    from_mapping,
    load_toml,
    parse_override,
    to_dict,
)
from llmrec_local.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    layers: tuple[int, ...] = (64, 64)


@dataclass(frozen=True)
class Outer:
    name: str
    mode: Literal["a", "b"] = "a"
    limit: int | None = None
    path: Path = Path("x")
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")


def test_builds_nested_and_coerces_lossless_types() -> None:
    cfg = from_mapping(Outer, {"name": "n", "inner": {"lr": 1, "layers": [8, 4]}, "path": "p/q"})
    assert cfg.inner == Inner(lr=1.0, layers=(8, 4))
    assert isinstance(cfg.inner.lr, float) and cfg.path == Path("p/q")


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['nmae'\].*valid keys are \['inner', 'limit'"):
        from_mapping(Outer, {"nmae": "n"})


def test_nested_unknown_key_names_its_location() -> None:
    with pytest.raises(ConfigError, match=r"recipe\.inner: unknown key\(s\) \['lrr'\]"):
        from_mapping(Outer, {"name": "n", "inner": {"lrr": 1}}, "recipe")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": 3}, r"config\.name: expected a string, got 3"),
        ({"name": "n", "mode": "c"}, r"config\.mode: 'c' is not one of \['a', 'b'\]"),
        ({"name": "n", "limit": True}, r"config\.limit: True matches none of"),
        ({"name": "n", "limit": -1}, r"limit must be >= 0, got -1"),
        ({}, r"required key 'name' is missing"),
    ],
)
def test_bad_values_are_named(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(Outer, data)


def test_overrides_parse_toml_values_and_bare_strings() -> None:
    assert parse_override("inner.lr=0.5") == (["inner", "lr"], 0.5)
    assert parse_override("name=qwen2-7b") == (["name"], "qwen2-7b")
    assert parse_override("inner.layers=[1, 2]") == (["inner", "layers"], [1, 2])
    data = apply_overrides({"name": "n", "inner": {"lr": 1.0}}, ["inner.lr=2", "mode=b"])
    assert data == {"name": "n", "inner": {"lr": 2}, "mode": "b"}
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_override("inner.lr")
    with pytest.raises(ConfigError, match="is a value, not a table"):
        apply_overrides({"name": "n"}, ["name.x=1"])


def test_hash_is_stable_and_sensitive() -> None:
    a = from_mapping(Outer, {"name": "n"})
    assert config_hash(a) == config_hash(from_mapping(Outer, {"name": "n", "inner": {"lr": 0.001}}))
    assert config_hash(a) != config_hash(from_mapping(Outer, {"name": "n", "mode": "b"}))
    assert len(config_hash(a)) == 16


def test_dump_toml_round_trips(tmp_path: Path) -> None:
    cfg = from_mapping(Outer, {"name": 'quote"d', "limit": 3, "inner": {"layers": [1]}})
    path = tmp_path / "r.toml"
    path.write_text(dump_toml(to_dict(cfg)))
    assert from_mapping(Outer, load_toml(path)) == cfg


def test_load_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_toml(bad)


def test_unknown_keys_suggest_the_closest_valid_key() -> None:
    @dataclass(frozen=True)
    class Train:
        lr: float = 1e-3
        epochs: int = 10
        patience: int = 5

    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lrr'\] \(did you mean 'lr'\?\)"):
        from_mapping(Train, {"lrr": 0.1}, "train")
    with pytest.raises(ConfigError, match=r"\(did you mean: 'epoch' -> 'epochs', 'paitence' -> 'patience'\?\)"):
        from_mapping(Train, {"epoch": 1, "paitence": 2}, "train")
    with pytest.raises(ConfigError) as exc:
        from_mapping(Train, {"colour": 1}, "train")
    assert "did you mean" not in str(exc.value)


def test_unknown_recipe_table_suggests_the_closest_table() -> None:
    from llmrec_local.run.config import parse_recipe

    with pytest.raises(ConfigError, match=r"unknown table\(s\) \['trian'\] \(did you mean 'train'\?\)"):
        parse_recipe({"recipe": {"name": "x"}, "prepare": {"source": "."}, "trian": {}})
