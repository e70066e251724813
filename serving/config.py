"""Settings of the two servers, as typed frozen configs (the shape every stage's ``config.py`` has).

- `ServerConfig`: the lab's OpenAI-compatible vLLM server (`serving.llm_server`), the ``[server]`` table of
  ``serving/llm_server.toml``, read by `load_server_config`.
- `ServingLimits`: bounds on one request to the recommendation API (`serving.recommend_server`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmrec_local.config import apply_overrides, from_mapping, load_toml
from llmrec_local.errors import ConfigError
from llmrec_local.llm.openai_backend import DEFAULT_API_KEY_ENV, check_env_name

DEFAULT_CONFIG = Path(__file__).with_name("llm_server.toml")


@dataclass(frozen=True)
class ServerConfig:
    """``[server]`` table of ``serving/llm_server.toml``. None = the registry's recommended setting, else vLLM's.

    The API key is never a setting: it is read from the environment variable named `api_key_env` and handed to vLLM
    as ``VLLM_API_KEY`` in its environment (``--api-key`` on its command line would show in ``ps``). A `host` other
    than loopback needs that key.
    """

    model: str = "smoke"
    host: str = "127.0.0.1"
    port: int = 8000
    health_timeout_s: float = 600.0
    structured_outputs_backend: str = "guidance"
    disable_any_whitespace: bool = True
    enable_prefix_caching: bool = True
    max_model_len: int | None = None
    dtype: str | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    quantization: str | None = None
    enforce_eager: bool | None = None
    seed: int = 0
    api_key_env: str = DEFAULT_API_KEY_ENV
    cpu_kvcache_space_gib: int = 1
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port={self.port} must be in 1..65535")
        if self.health_timeout_s <= 0:
            raise ValueError(f"health_timeout_s={self.health_timeout_s} must be > 0")
        try:
            check_env_name(self.api_key_env)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if any(a == "--api-key" or a.startswith("--api-key=") for a in self.extra_args):
            # the value is not repeated: it is the key
            raise ValueError(f"extra_args must not carry --api-key (it would show in `ps`); export the key as "
                             f"{self.api_key_env} (api_key_env) and the server hands it to vLLM in its environment")


def load_server_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ServerConfig:
    """Read the ``[server]`` table (default ``serving/llm_server.toml``) and apply ``key=value`` overrides."""
    data = load_toml(path or DEFAULT_CONFIG)
    unknown = set(data) - {"server"}
    if unknown:
        raise ConfigError(f"{path or DEFAULT_CONFIG}: unknown tables {sorted(unknown)}; only [server]")
    table = apply_overrides(data.get("server", {}), list(overrides))
    if "api_key" in table:  # the value is not repeated in the message: it is the key
        raise ConfigError(f"server.api_key: the key is never read from a config file or a command line (shared, or "
                          f"visible in `ps`); export it as {table.get('api_key_env', DEFAULT_API_KEY_ENV)} "
                          f"(server.api_key_env) and remove server.api_key")
    return from_mapping(ServerConfig, table, where="server")


@dataclass(frozen=True)
class ServingLimits:
    """Bounds on one request, so that no input can make the service slow or exhaust memory.

    max_k: largest K accepted (also capped at n_items). max_batch: users per batch request.
    max_history: items per fold-in history. max_body_bytes: largest request body, counted as it arrives (also
    without Content-Length), before anything parses it; larger bodies get 413.
    """

    max_k: int = 100
    max_batch: int = 256
    max_history: int = 500
    max_body_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_k", "max_batch", "max_history", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
