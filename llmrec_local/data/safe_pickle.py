"""A restricted unpickler for LLMRec's pickled matrices (``train_mat``).

``pickle.load`` executes whatever callables a file names, so an untrusted pickle can run ``os.system``. This
unpickler resolves only an explicit allow-list of globals: numpy's array reconstruction helpers, numpy/scipy sparse
array classes, and the few builtins that numpy and scipy pickles reference. Any other global stops the load with a
DataError *before* it is called (``find_class`` runs when the opcode is read, and the callable is only invoked by a
later REDUCE opcode, which never runs because we raise first).
"""

from __future__ import annotations

import builtins
import codecs
import copyreg
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from ..errors import DataError

_SPARSE_CLASSES = (
    "csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "bsr_matrix", "dia_matrix",
    "csr_array", "csc_array", "coo_array", "lil_array", "dok_array", "bsr_array", "dia_array",
)
# Modules under which scipy has pickled its sparse classes over the years (scipy<1.8 used scipy.sparse.csr etc.).
_SPARSE_MODULES = ("scipy.sparse", *(f"scipy.sparse.{p}{k}" for p in ("", "_") for k in (
    "csr", "csc", "coo", "lil", "dok", "bsr", "dia", "base", "compressed", "data", "arrays", "matrix")))


def _numpy_core_attr(submodule: str, name: str) -> Callable[[], Any]:
    """Resolve numpy._core.<submodule>.<name> (numpy >= 2) or numpy.core.<submodule>.<name> (numpy 1.x) lazily."""
    def get() -> Any:
        import importlib

        for root in ("numpy._core", "numpy.core"):
            try:
                return getattr(importlib.import_module(f"{root}.{submodule}"), name)
            except (ImportError, AttributeError):
                continue
        raise AttributeError(f"numpy has no {submodule}.{name}")
    return get


def _allowed_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    table: dict[tuple[str, str], Callable[[], Any]] = {}
    for root in ("numpy.core", "numpy._core"):
        table[(f"{root}.multiarray", "_reconstruct")] = _numpy_core_attr("multiarray", "_reconstruct")
        table[(f"{root}.multiarray", "scalar")] = _numpy_core_attr("multiarray", "scalar")
        table[(f"{root}.numeric", "_frombuffer")] = _numpy_core_attr("numeric", "_frombuffer")
    table[("numpy", "ndarray")] = lambda: np.ndarray
    table[("numpy", "dtype")] = lambda: np.dtype
    for name in _SPARSE_CLASSES:
        for module in _SPARSE_MODULES:
            table[(module, name)] = (lambda n: lambda: getattr(scipy.sparse, n))(name)
    # Protocol 0/1 pickles rebuild objects through copyreg._reconstructor(cls, object, state); cls itself must
    # still pass this table, so allowing the helper admits no new class.
    for mod in ("copyreg", "copy_reg"):
        table[(mod, "_reconstructor")] = lambda: copyreg._reconstructor
    table[("_codecs", "encode")] = lambda: codecs.encode  # numpy pickles array bytes as latin-1 text
    for mod in ("builtins", "__builtin__"):
        for name in ("object", "tuple", "list", "dict", "set", "frozenset", "int", "float", "complex", "bool",
                     "str", "bytes", "bytearray", "slice"):
            table[(mod, name)] = (lambda n: lambda: getattr(builtins, n))(name)
    return table


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        resolver = _ALLOWED.get((module, name))
        if resolver is None:
            raise DataError(
                f"{self._path}: refused to unpickle global {module}.{name}: this file may only contain numpy/scipy "
                f"arrays, and loading it would call arbitrary code (nothing was executed). Fix: if you trust the "
                f"file, re-save the matrix with scipy.sparse.save_npz and use that, or delete it (train.json is "
                f"enough to prepare an LLMRec dataset)"
            )
        return resolver()


def safe_load(path: str | Path) -> Any:
    """Unpickle `path` admitting only numpy/scipy array classes; DataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the dataset folder")
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except DataError:
            raise
        except Exception as exc:  # corrupt or truncated pickles raise many types (UnpicklingError, EOFError, ...)
            raise DataError(
                f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); re-download or re-create the file"
            ) from exc


def load_sparse_matrix(path: str | Path, max_shape: tuple[int, int] | None = None) -> scipy.sparse.csr_matrix:
    """A pickled (or ``.npz``) scipy sparse matrix from `path`, as CSR; DataError if it holds anything else.

    A sparse object whose state was crafted or damaged (missing or inconsistent index arrays) is a DataError too, and
    a shape beyond `max_shape` (what the other files of the dataset imply) is refused before the CSR conversion
    allocates its per-row index.
    """
    path = Path(path)
    if path.suffix == ".npz":
        try:
            obj: Any = scipy.sparse.load_npz(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a scipy sparse .npz file ({exc}); re-create it") from exc
    else:
        obj = safe_load(path)
    if not scipy.sparse.issparse(obj):
        raise DataError(
            f"{path}: expected a pickled scipy sparse matrix, found a {type(obj).__name__}; "
            f"point to LLMRec's train_mat or delete the file"
        )
    fix = "re-create the matrix (scipy.sparse.save_npz) or delete the file (train.json is enough)"
    try:
        shape = (int(obj.shape[0]), int(obj.shape[1]))
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: holds a {type(obj).__name__} without a valid shape ({type(exc).__name__}: {exc}); "
                        f"{fix}") from exc
    if max_shape is not None and (shape[0] > max_shape[0] or shape[1] > max_shape[1]):
        raise DataError(f"{path}: matrix shape {shape} exceeds the {max_shape} (users, items) that the other files "
                        f"of the dataset imply; {fix}")
    try:
        matrix = scipy.sparse.csr_matrix(obj)
        matrix.check_format(full_check=True)
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        # A crafted pickle can restore a sparse class with missing or inconsistent arrays (no code ran: only its
        # state is wrong); scipy then fails with whatever attribute it misses first.
        raise DataError(f"{path}: holds a {type(obj).__name__} whose contents are inconsistent "
                        f"({type(exc).__name__}: {exc}); {fix}") from exc
    return matrix
