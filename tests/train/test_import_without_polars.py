import subprocess
import sys
from pathlib import Path


def test_training_and_evaluation_import_without_polars():
    """GPU hosts may lack polars: the train/evaluate path must import (and train on arrays) without it."""
    code = """
import sys
from pathlib import Path
sys.modules["polars"] = None  # any `import polars` now fails
import numpy as np
from llmrec_local.data.arrays import InteractionArrays
import llmrec_local.train, llmrec_local.evaluate
from llmrec_local.train import ModelConfig, TrainConfig, train
rng = np.random.default_rng(0)
pairs = np.unique(np.stack([rng.integers(0, 20, 200), rng.integers(0, 30, 200)], 1), axis=0)
arrays = InteractionArrays.from_pairs(20, 30, pairs[:100], pairs[100:120], pairs[120:])
train(TrainConfig(model=ModelConfig(name="llmrec"), epochs=1, progress=False), arrays, sys.argv[1])
print("ok")
"""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run([sys.executable, "-c", code, f"{d}/run"], capture_output=True, text=True, timeout=120, cwd=root,
                             env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
