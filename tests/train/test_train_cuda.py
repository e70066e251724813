"""The train stage on CUDA (the CPU twins of these checks are in test_train.py). Skipped where torch sees no CUDA
device (CI); run on the GPU check machine by ``benchmarks/gpu_checks.sh``."""

import json

import pytest
import torch

from llmrec_local.evaluate.stage import evaluate
from llmrec_local.train import ModelConfig, TrainConfig, train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_training_on_cuda_learns_is_deterministic_and_resumes(tmp_path, planted_arrays, pop_recall):
    """The whole train stage on CUDA: planted preferences are learned (beats popularity), the same seed gives the
    same validation metrics, and a rerun skips the finished run."""
    arrays = planted_arrays
    cfg = TrainConfig(model=ModelConfig(name="llmrec", variant="faithful"), epochs=12, batch_size=128, lr=0.02,
                      patience=4, progress=False, device="cuda")
    a = train(cfg, arrays, tmp_path / "a")
    b = train(cfg, arrays, tmp_path / "b")
    va = json.loads((a / "manifest.json").read_text())["val_metrics"]
    assert va == json.loads((b / "manifest.json").read_text())["val_metrics"]
    stamp = (a / "_COMPLETE").read_text()
    assert train(cfg, arrays, tmp_path / "a") == a and (a / "_COMPLETE").read_text() == stamp
    result = evaluate(a, arrays)
    assert result["metrics"]["recall@20"] > pop_recall(arrays) + 0.1
