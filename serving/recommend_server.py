"""Serve top-K recommendations of a finished training run over HTTP (FastAPI + uvicorn).

    python -m serving.recommend_server --run artifacts/quickstart/runs/lightgcn-s0
    python -m serving.recommend_server --run RUN_DIR --data DATASET_DIR --host 127.0.0.1 --port 8000

The run (and its dataset: the one named in the run manifest unless ``--data`` is given) is loaded before the
server binds, so an incomplete run, a run of another schema version, a folder that is not a run, or a dataset that
is not the run's own is refused with ``error: <message>`` and exit status 2. Binds 127.0.0.1 unless told otherwise;
stop it with Ctrl-C or SIGTERM to its PID.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from llmrec_local.cli import configure_logging, run_main

log = logging.getLogger("serving.recommend_server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving.recommend_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="finished training run folder (runs/<run_id>)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset artifact of the run (default: the path recorded in the run manifest)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-k", type=int, default=100, help="largest K a request may ask for (default 100)")
    parser.add_argument("--max-batch", type=int, default=256, help="users per batch request (default 256)")
    parser.add_argument("--max-history", type=int, default=500, help="items per fold-in history (default 500)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request (load tests)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    from llmrec_local.errors import ConfigError

    from .app import create_app
    from .recommend import ServingLimits

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a valid port (0-65535)")
    try:
        limits = ServingLimits(max_k=args.max_k, max_batch=args.max_batch, max_history=args.max_history)
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


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
