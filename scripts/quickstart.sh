#!/usr/bin/env bash
# Set up the environment (idempotent, see scripts/setup_env.sh) and run the main job end to end on the embedded
# default: bundled MovieLens ml-latest-small, the tiny locally built smoke LLM (random weights, labelled as such)
# through the real vLLM engine with constrained JSON decoding, the real MiniLM text embedder, graph training of
# MF / LightGCN / LLMRec over 3 seeds, evaluation and an HTML report. Finished stages are skipped on a rerun.
# Extra arguments go to the runner (e.g. `bash scripts/quickstart.sh --dry-run` or `train.epochs=10`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export LLMREC_CACHE_DIR="${LLMREC_CACHE_DIR:-$PWD/artifacts/cache}"
exec .venv/bin/python -m llmrec_local.run recipes/quickstart.toml "$@"
