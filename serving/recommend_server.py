"""Serve top-K recommendations of a finished training run over HTTP (FastAPI + uvicorn).

    python -m serving.recommend_server --run artifacts/quickstart/runs/lightgcn-seed0
    python -m serving.recommend_server --run RUN_DIR --data DATASET_DIR --host 127.0.0.1 --port 8000

The run (and its dataset: the one named in the run manifest unless ``--data`` is given) is loaded before the
server binds, so an incomplete run, a run of another schema version, a folder that is not a run, or a dataset that
is not the run's own is refused with ``error: <message>`` and exit status 2. Binds 127.0.0.1 unless told otherwise;
stop it with Ctrl-C or SIGTERM to its PID. `launch` and `stop` run it as a child process (tests, load benchmark).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from llmrec_local.cli import configure_logging, prog, run_main

from . import free_port

log = logging.getLogger("serving.recommend_server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog("python -m serving.recommend_server"),
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="finished training run folder (runs/<run_id>)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset artifact of the run (default: the path recorded in the run manifest)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-k", type=int, default=100, help="largest K a request may ask for (default 100)")
    parser.add_argument("--max-batch", type=int, default=256, help="users per batch request (default 256)")
    parser.add_argument("--max-history", type=int, default=500, help="items per fold-in history (default 500)")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20,
                        help="largest request body in bytes; larger ones get 413 before parsing (default 1048576)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request (load tests)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    from llmrec_local.errors import ConfigError

    from .app import create_app
    from .config import ServingLimits

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a valid port (0-65535)")
    try:
        limits = ServingLimits(max_k=args.max_k, max_batch=args.max_batch, max_history=args.max_history,
                               max_body_bytes=args.max_body_bytes)
    except ValueError as exc:
        raise ConfigError(f"bad serving limit: {exc}") from exc
    app = create_app(args.run, args.data, limits=limits)
    import uvicorn

    rec = app.state.recommender
    log.info("serving run %s (%s, %d users x %d items, d=%d) on http://%s:%d", rec.run_dir, rec.manifest.get("model"),
             rec.n_users, rec.n_items, rec.dim, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, access_log=not args.no_access_log,
                log_level="debug" if args.verbose else "info")
    return 0


def launch(run: Path, log_path: Path, *, port: int | None = None, extra: Sequence[str] = (),
           timeout_s: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start the service as a child process on 127.0.0.1 (a free port unless given) and wait for /health.

    Returns (process, base URL). Raises RuntimeError with the tail of the log when the service exits or is not
    healthy within `timeout_s` (the process is stopped first). Output goes to `log_path`, a file rather than a
    pipe: a pipe nobody reads would eventually block the server.
    """
    import httpx

    port = free_port() if port is None else port
    cmd = [sys.executable, "-m", "serving.recommend_server", "--run", str(run), "--port", str(port), *extra]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with status {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"the service was not healthy after {timeout_s} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the service's PID (uvicorn shuts down cleanly), SIGKILL if it has not exited after 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


if __name__ == "__main__":
    run_main(main)
