#!/usr/bin/env bash
# Set up the environment (idempotent, see scripts/setup_env.sh) and run the whole test suite on CPU, offline.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k prepare`). pytest exits non-zero on any failure
# and with status 5 when no test was collected, so this script never passes on an empty run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
