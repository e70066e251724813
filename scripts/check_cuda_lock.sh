#!/usr/bin/env bash
# On demand (not in CI): prove that a cuda lock is complete for Linux x86_64 from any connected machine, CPU-only
# included, with pip's own configuration ignored (what an ordinary machine sees: PyPI only). Installs nothing.
#   bash scripts/check_cuda_lock.sh [PYTHON_VERSION]            pip resolves every pinned wheel for the target
#                                                               (metadata only, a minute)
#   bash scripts/check_cuda_lock.sh 3.12 --download DIR          also downloads them all, hash-checked (several GB)
set -euo pipefail
cd "$(dirname "$0")/.."
VER=${1:-3.12}
LOCK="locks/cuda-py${VER/./}.txt"
[ -f "$LOCK" ] || { echo "error: no $LOCK; make it with: bash scripts/lock.sh cuda $VER" >&2; exit 2; }
PY=${PYTHON:-python3}
# the same target tags as `python -m llmrec_local.kit pack` (glibc >= 2.31, CPython $VER)
mapfile -t TARGET < <("$PY" -c "
import sys; sys.path.insert(0, '.')
from llmrec_local.kit.pack import target_pip_args
print('\n'.join(target_pip_args('$VER')))")
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
# --ignore-requires-python: pip 23 checks the running interpreter, not --python-version, after resolving
"$PY" -m pip install --dry-run --quiet --target "$tmp/t" --no-deps --require-hashes --ignore-requires-python \
  --disable-pip-version-check --report "$tmp/report.json" \
  "${TARGET[@]}" -r "$LOCK"
"$PY" - "$tmp/report.json" "$LOCK" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))["install"]
hosts = sorted({item["download_info"]["url"].split("/")[2] for item in report})
print(f"[cuda-lock] {sys.argv[2]}: all {len(report)} pinned wheels resolve for the target, from {', '.join(hosts)}")
PY
if [ "${2:-}" = "--download" ]; then
  DEST=${3:?--download needs a folder}
  "$PY" -m pip download --quiet --no-deps --require-hashes --dest "$DEST" "${TARGET[@]}" -r "$LOCK"
  echo "[cuda-lock] downloaded $(ls "$DEST" | wc -l) wheels, $(du -sh "$DEST" | cut -f1), in $(( $(date +%s) - start )) s"
fi
echo "[cuda-lock] done in $(( $(date +%s) - start )) s"
