#!/usr/bin/env bash
# The GPU checks of this project in one short script, for the lent check machine (one H200; Python 3.12, torch 2.11,
# no polars, no vllm, no open_clip, nothing installable): CUDA training and evaluation speed and peak GPU memory at
# Netflix scale, for the faithful variant and the fixed variant with its MAE. The training path imports no polars,
# so the repository's working tree is all it needs. Each benchmark prints one JSON line; `DEVICE=cpu PYTHON=.venv/bin/python` runs it here.
# Usage (from the repository root): bash benchmarks/gpu_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
"$PY" benchmarks/train_speed.py --device "$DEVICE" --epochs 5 | tail -n 1
"$PY" benchmarks/train_speed.py --device "$DEVICE" --epochs 5 --variant fixed --mae | tail -n 1
