"""The servers' settings (`serving.config`): the LLM server's ``[server]`` table and the recommendation API's limits.

Named after its package as well as its module: pytest runs in prepend import mode, where test file names are unique
across tests/ (tests/test_config.py is the core config's)."""

from __future__ import annotations

import pytest

from llmrec_local.errors import ConfigError
from serving.config import ServingLimits, load_server_config


def test_llm_server_config_defaults_overrides_and_errors() -> None:
    cfg = load_server_config(overrides=["port=8123", "max_model_len=512"])
    assert cfg.host == "127.0.0.1" and cfg.port == 8123 and cfg.model == "smoke"
    with pytest.raises(ConfigError, match="prot"):
        load_server_config(overrides=["prot=1"])
    with pytest.raises(ConfigError, match="port"):
        load_server_config(overrides=["port=70000"])


def test_serving_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_k"):
        ServingLimits(max_k=0)
