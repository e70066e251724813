#!/usr/bin/env bash
# Regenerate the hashed lock files in locks/ with uv (`uv pip compile --generate-hashes`), for Linux x86_64 with
# glibc >= 2.31 (manylinux_2_31), wheels only.
#   bash scripts/lock.sh                 # cpu for Python 3.11, cuda for 3.11, 3.12 and 3.13
#   bash scripts/lock.sh cpu 3.12        # one environment, one Python
# cpu  = pyproject extras llm-cpu,embed,clip,serve,dev,ray,tune,tracking + locks/cpu.in (torch +cpu build). torch's source is decided
#        by llmrec_local/kit/torch_source.py exactly as in scripts/setup_env.sh (pip's configured wheel folders, else
#        PyTorch's CPU index, or $LLMREC_TORCH_INDEX). torchaudio, torchcodec and triton are left out: unused, and
#        their PyPI builds break imports beside the CPU torch.
# cuda = pyproject extras llm-gpu,embed,clip,serve,dev,ray,tune,tracking; vllm brings its own CUDA torch from PyPI.
# uv is taken from $UV, then PATH, else installed (pinned) into a throwaway venv. Needs PyPI (metadata only).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
PLATFORM=x86_64-manylinux_2_31
if [ -n "${UV:-}" ]; then :; elif command -v uv >/dev/null 2>&1; then UV=uv; else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m venv "$tmp/uv" && "$tmp/uv/bin/python" -m pip install -q "uv==$UV_VERSION" >&2
  UV="$tmp/uv/bin/uv"
fi

lock_one() {  # lock_one ENV PYTHON_VERSION
  local env=$1 ver=$2 out="locks/$1-py${2/./}.txt" extras args=()
  if [ "$env" = cpu ]; then
    extras=(--extra llm-cpu --extra embed --extra clip --extra serve --extra dev --extra ray --extra tune --extra tracking)
    local probe_py="python$ver"
    command -v "$probe_py" >/dev/null 2>&1 || probe_py=python3
    local uv_args
    uv_args=$("$probe_py" llmrec_local/kit/torch_source.py --uv --python "$probe_py" --prefix "[lock] ")
    read -ra args <<< "$uv_args"
    args+=(locks/cpu.in --no-emit-package torchaudio --no-emit-package torchcodec --no-emit-package triton)
  elif [ "$env" = cuda ]; then
    extras=(--extra llm-gpu --extra embed --extra clip --extra serve --extra dev --extra ray --extra tune --extra tracking)
  else
    echo "error: environment '$env' is not one of cpu, cuda" >&2; exit 2
  fi
  echo "[lock] $out" >&2
  "$UV" pip compile --quiet pyproject.toml "${args[@]}" "${extras[@]}" --python-version "$ver" \
    --python-platform "$PLATFORM" --only-binary :all: --generate-hashes \
    --custom-compile-command "bash scripts/lock.sh $env $ver" -o "$out"
}

if [ $# -eq 0 ]; then
  lock_one cpu 3.11
  for ver in 3.11 3.12 3.13; do lock_one cuda "$ver"; done
elif [ $# -eq 2 ]; then
  lock_one "$1" "$2"
else
  echo "usage: bash scripts/lock.sh [cpu|cuda PYTHON_VERSION]" >&2; exit 2
fi
