"""The restricted unpickler admits numpy/scipy matrices in every pickle protocol and refuses anything else."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from llmrec_local.data.safe_pickle import load_sparse_matrix, safe_load
from llmrec_local.errors import DataError


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_scipy_and_numpy_objects_load(protocol: int, tmp_path: Path) -> None:
    mat = scipy.sparse.random(5, 7, density=0.3, format="csr", random_state=0, dtype=np.float32)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"mat": mat, "arr": np.arange(4.0), "scalar": np.float64(2.5)}, protocol))
    obj = safe_load(path)
    assert (obj["mat"] != mat).nnz == 0 and obj["arr"].tolist() == [0, 1, 2, 3] and obj["scalar"] == 2.5
    path.write_bytes(pickle.dumps(mat.tocoo(), protocol))
    assert (load_sparse_matrix(path) != mat).nnz == 0


def test_npz_matrix(tmp_path: Path) -> None:
    mat = scipy.sparse.eye(3, format="csr")
    scipy.sparse.save_npz(tmp_path / "m.npz", mat)
    assert (load_sparse_matrix(tmp_path / "m.npz") != mat).nnz == 0


@pytest.mark.parametrize("payload, refused", [
    (eval, "builtins.eval"), (pickle.loads, "_pickle.loads"), (Path, "pathlib.Path"),
])
def test_other_globals_are_refused(payload: object, refused: str, tmp_path: Path) -> None:
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(DataError, match=rf"evil: refused to unpickle global {refused}"):
        safe_load(path)


def test_not_a_matrix_or_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="expected a pickled scipy sparse matrix, found a list"):
        load_sparse_matrix(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="x: not a readable pickle"):
        safe_load(path)
