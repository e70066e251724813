"""`AugmentConfig`: the ``[augment]`` table of a recipe (which model, which jobs, sampling, retries, budgets)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ADDED_SETTING, from_mapping
from ..errors import ConfigError
from ..executors.ray_executor import ExecutorKind, RaySettings
from ..llm.openai_backend import DEFAULT_API_KEY_ENV, check_env_name

#: The three LLM jobs, in the order the runner executes them.
JOB_NAMES: tuple[str, ...] = ("pairs", "attributes", "profiles")

BackendKind = Literal["auto", "vllm", "openai", "transformers"]


@dataclass(frozen=True)
class JobSampling:
    """Sampling of one job's first attempt; retries raise the temperature by `retry_temperature_step`.

    The paper's setting (Table 4, chosen for Netflix) is temperature 0.6, top_p 0.1.
    """

    temperature: float = 0.6
    top_p: float = 0.1
    max_tokens: int = 128

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 8:
            raise ValueError(f"max_tokens must be >= 8 (a JSON answer needs room), got {self.max_tokens}")


@dataclass(frozen=True)
class PairsSampling(JobSampling):
    """Pair job: the answer is two small integers."""

    max_tokens: int = 32


@dataclass(frozen=True)
class AttributesSampling(JobSampling):
    """Attribute job: a few bounded strings."""

    max_tokens: int = 160


@dataclass(frozen=True)
class ProfilesSampling(JobSampling):
    """Profile job: enums, lists and strings."""

    max_tokens: int = 320


@dataclass(frozen=True)
class AugmentConfig:
    """Settings of the LLM augmentation stage.

    Attributes:
        model: model alias resolved by ``llmrec_local.llm.registry`` (e.g. ``qwen2-7b``) or a model folder.
        backend: ``vllm`` (offline engine), ``openai`` (any OpenAI-compatible server at `base_url`),
            ``transformers`` (HF generate + llguidance), or ``auto`` (the factory picks).
        jobs: subset of ``pairs``, ``attributes``, ``profiles``. The pair job's candidates (K of them per user)
            come from the candidates stage's artifact (``[candidates]``: K, the base model and its epochs).
        pairs, attributes, profiles: per-job sampling.
        seed: base seed; each request's seed is derived from it, the job, the entity and the attempt.
        max_retries: extra attempts for a request whose answer failed parsing or the domain checks.
        retry_temperature_step: temperature added per retry (capped at 1.5), so a retry explores.
        max_failure_rate: fraction of entities allowed to end without a valid record; above it the job fails.
        history_max_items, history_max_chars: budget for the history section of a prompt (most recent first);
            the character budget approximates the token budget at ~4 characters per token (the smoke model's
            tokenizer spends ~2, so characters are a poor proxy: prefer `history_max_tokens`).
        history_max_tokens: when set, the history section's budget in tokens of the job model's own tokenizer (the
            history lines as they appear in the prompt, counted exactly), replacing `history_max_chars`; None keeps
            the character budget (the behaviour before this setting existed). Needs the model folder on disk (also
            for ``backend = "openai"``: the tokenizer is read locally).
        attribute_fields: item attributes the attribute job asks for.
        max_value_chars: maxLength of every free-text value in the JSON schemas.
        max_list_items: maxItems of the profile lists (genres, directors).
        batch_size: requests per backend call (one cache flush per batch).
        max_requests: when set, each job handles only its first N entities (users/items) of this shard, in
            index order: a deterministic subset for quick runs. Retries come on top.
        shard_index, shard_count: this process handles the entities with ``index % shard_count == shard_index``.
        api_key_env: NAME of the environment variable holding the API key of an OpenAI-compatible server
            (``backend = "openai"``); the key itself is never read from a recipe or a command line.
        request_timeout_s: per-request timeout of the HTTP backend, in (0, 3600] seconds.
        request_retries: HTTP retries of a request after a timeout, a refused connection or 408/429/5xx, in [0, 10];
            a hung server costs at most request_timeout_s x (request_retries + 1) plus the backoff.
        request_backoff_s: first retry delay in [0, 60] seconds, doubled per retry (capped at 8 s).
        concurrency: HTTP requests in flight at once, in [1, 1024] (the server batches them).
        The four transport settings change how answers are fetched, not what they are, so they are not part of
        any artifact's identity.
        executor: ``local`` (one engine in this process) or ``ray`` (a pool of engines on Ray Data; the artifacts are
            byte-identical to a local run's, docs/usage.md, Scaling out).
        ray: the Ray pool of ``executor = "ray"`` (the ``[augment.ray]`` table: address, num_engines, num_cpus,
            num_gpus, max_restarts, max_task_retries). Like the transport settings, no artifact's identity.
    """

    model: str = "qwen2-7b"
    backend: BackendKind = "auto"
    jobs: tuple[str, ...] = JOB_NAMES
    pairs: PairsSampling = field(default_factory=PairsSampling)
    attributes: AttributesSampling = field(default_factory=AttributesSampling)
    profiles: ProfilesSampling = field(default_factory=ProfilesSampling)
    seed: int = 0
    max_retries: int = 2
    retry_temperature_step: float = 0.2
    max_failure_rate: float = 0.05
    history_max_items: int = 50
    history_max_chars: int = 4000
    history_max_tokens: int | None = field(default=None, metadata=ADDED_SETTING)
    attribute_fields: tuple[str, ...] = ("director", "country", "language")
    max_value_chars: int = 48
    max_list_items: int = 5
    batch_size: int = 64
    max_requests: int | None = None
    shard_index: int = 0
    shard_count: int = 1
    api_key_env: str = DEFAULT_API_KEY_ENV
    request_timeout_s: float = 120.0
    request_retries: int = 3
    request_backoff_s: float = 0.5
    concurrency: int = 16
    executor: ExecutorKind = field(default="local", metadata=ADDED_SETTING)
    ray: RaySettings = field(default_factory=RaySettings, metadata=ADDED_SETTING)

    def __post_init__(self) -> None:
        unknown = [j for j in self.jobs if j not in JOB_NAMES]
        if unknown or not self.jobs:
            raise ValueError(f"jobs must be a non-empty subset of {list(JOB_NAMES)}, got {list(self.jobs)}")
        if len(set(self.jobs)) != len(self.jobs):
            raise ValueError(f"jobs lists a job twice: {list(self.jobs)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate must be in [0, 1], got {self.max_failure_rate}")
        if self.history_max_items < 1 or self.history_max_chars < 100:
            raise ValueError("history_max_items must be >= 1 and history_max_chars >= 100")
        if self.history_max_tokens is not None and self.history_max_tokens < 16:
            raise ValueError(f"history_max_tokens must be >= 16 when set (one history line needs ~10-30 tokens), got "
                             f"{self.history_max_tokens}")
        if not self.attribute_fields:
            raise ValueError("attribute_fields must name at least one field (e.g. director)")
        bad = [f for f in self.attribute_fields if not f.replace("_", "").isalnum() or f in ("item", "cache_key")]
        if bad:
            raise ValueError(f"attribute_fields must be plain identifiers other than item/cache_key, got {bad}")
        if self.max_value_chars < 8 or self.max_list_items < 1:
            raise ValueError("max_value_chars must be >= 8 and max_list_items >= 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError(f"max_requests must be >= 1 when set, got {self.max_requests}")
        if not 0 <= self.shard_index < self.shard_count:
            raise ValueError(f"shard must satisfy 0 <= index < count, got {self.shard_index}/{self.shard_count}")
        try:
            check_env_name(self.api_key_env)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        for name, low, high in (("request_timeout_s", 0.0, 3600.0), ("request_retries", 0, 10),
                                ("request_backoff_s", 0.0, 60.0), ("concurrency", 1, 1024)):
            value = getattr(self, name)
            low_ok = value > low if name == "request_timeout_s" else value >= low
            if not (low_ok and value <= high):
                bounds = f"({low:g}, {high:g}]" if name == "request_timeout_s" else f"[{low:g}, {high:g}]"
                raise ValueError(f"{name}={value} is out of range; choose a value in {bounds}")

    def http_options(self) -> dict[str, Any]:
        """The HTTP backend's transport settings (names of `OpenAIBackend`'s arguments); the key stays in the
        environment, only its variable's name travels."""
        return {"api_key_env": self.api_key_env, "timeout_s": self.request_timeout_s,
                "max_retries": self.request_retries, "backoff_s": self.request_backoff_s,
                "concurrency": self.concurrency}

    def sampling_for(self, job: str) -> JobSampling:
        return {"pairs": self.pairs, "attributes": self.attributes, "profiles": self.profiles}[job]


#: Keys that moved out of ``[augment]``: the candidates stage owns K and the base model (one place for each).
MOVED_KEYS = {"k": "candidates.k", "base_epochs": "candidates.epochs"}


#: Keys that would hold a secret: refused without echoing their value (recipes are shared, printed and hashed).
SECRET_KEYS = ("api_key", "key", "token", "api_token")


def augment_config(table: Mapping[str, Any], where: str = "augment") -> AugmentConfig:
    """An `AugmentConfig` from an ``[augment]`` table; a key that moved to another table is a ConfigError naming
    its new place, and a key holding a secret is a ConfigError that does not repeat it."""
    for key in SECRET_KEYS:
        if key in table:
            raise ConfigError(f"{where}.{key}: an API key is never read from a recipe or a command line (both are "
                              f"shared, logged or visible in `ps`); export it in the environment variable named by "
                              f"{where}.api_key_env (default {DEFAULT_API_KEY_ENV}) and remove {where}.{key}")
    for key, new in MOVED_KEYS.items():
        if key in table:
            raise ConfigError(f"{where}.{key} moved to {new}: the candidates stage owns the candidate lists "
                              f"(K, the base model and its epochs); set {new.split('.')[1]} in the [candidates] "
                              "table (or --k on the command line)")
    return from_mapping(AugmentConfig, table, where)
