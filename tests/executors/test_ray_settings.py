"""The executor settings without a Ray runtime: validation, recipe tables and flags, config hashes unchanged by the
new defaults, and the combinations refused before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_local.augment.__main__ import build_config, run_parser
from llmrec_local.augment.config import AugmentConfig, augment_config
from llmrec_local.augment.stage import make_backend
from llmrec_local.config import config_hash, from_mapping
from llmrec_local.embed.__main__ import build_parser, resolve_config
from llmrec_local.embed.config import EmbedConfig
from llmrec_local.errors import ConfigError
from llmrec_local.executors.ray_executor import RaySettings, check_executor, with_ray_flags


def test_defaults_keep_every_config_hash() -> None:
    """executor and ray are added settings: at their defaults they stay out of the hash (pinned elsewhere)."""
    assert config_hash(AugmentConfig(executor="local", ray=RaySettings())) == config_hash(AugmentConfig())
    assert config_hash(EmbedConfig(executor="local")) == config_hash(EmbedConfig())
    assert config_hash(AugmentConfig(executor="ray")) != config_hash(AugmentConfig())


def test_recipe_table_and_flags() -> None:
    config = augment_config({"executor": "ray", "ray": {"address": "auto", "num_engines": 4, "num_gpus": 1}})
    assert config.ray == RaySettings(address="auto", num_engines=4, num_gpus=1.0)
    args = run_parser().parse_args(["--executor", "ray", "--num-engines", "2", "--ray-address", "auto",
                                    "--set", "ray.num_cpus=2"])
    assert build_config(args).ray == RaySettings(address="auto", num_engines=2, num_cpus=2.0)
    embed = resolve_config(build_parser().parse_args(["--data", "d", "--out", "o", "--executor", "ray",
                                                      "--num-engines", "3"]))
    assert embed.executor == "ray" and embed.ray.num_engines == 3
    # flags that were not given leave the recipe's values
    assert with_ray_flags({"ray": {"num_gpus": 1}}, None, 8) == {"ray": {"num_gpus": 1, "num_engines": 8}}
    assert with_ray_flags({"seed": 1}, None, None) == {"seed": 1}


@pytest.mark.parametrize("table, match", [
    ({"executor": "dask"}, "executor"),
    ({"executor": "ray", "ray": {"num_engines": 0}}, "num_engines"),
    ({"executor": "ray", "ray": {"num_cpus": 0}}, "num_cpus"),
    ({"executor": "ray", "ray": {"engines": 2}}, "engines"),
])
def test_bad_settings_are_config_errors(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_mapping(EmbedConfig, table, "embed")


def test_ray_needs_a_local_engine(tmp_path: Path) -> None:
    config = AugmentConfig(model="smoke", backend="openai", executor="ray")
    with pytest.raises(ConfigError, match="executor 'ray' runs local engines"):
        make_backend(config, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="not one of"):
        check_executor("dask")
