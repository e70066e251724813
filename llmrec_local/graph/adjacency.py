"""Normalised user-item adjacency as two torch.sparse CSR blocks.

The bipartite graph has no user-user or item-item edges, so its (U+I) x (U+I) adjacency is
``[[0, R], [R^T, 0]]`` and one propagation step splits into two sparse-dense products:
``E_u' = A_ui E_i`` (U x I times I x d) and ``E_i' = A_iu E_u`` (I x U times U x d). Keeping the two blocks as
separate CSR matrices (instead of the joint matrix) halves the work and lets a model propagate users and items
alternately, as the original LLMRec code does.

Normalisations (``R`` is the binary U x I training matrix, ``d_u``/``d_i`` the user/item degrees):

* ``symmetric`` (LightGCN): ``A_ui = D_u^{-1/2} R D_i^{-1/2}`` and ``A_iu = A_ui^T``.
* ``row`` (the original LLMRec ``csr_norm(mean_flag=True)``): ``A_ui = D_u^{-1/2} R`` and
  ``A_iu = D_i^{-1/2} R^T``; each block is scaled by its own row degrees only, with ``+1e-8`` in the degree as in
  the original.

Products that need gradients go through :meth:`BipartiteGraph.users_from_items` / :meth:`items_from_users`, whose
backward multiplies by a precomputed transpose (``dL/dX = A^T dL/dY``). Autograd through ``torch.sparse.mm`` on a
CSR matrix instead transposes and re-sorts the matrix on every backward pass, which made a training step about
5x slower on CPU (ml-latest-small, LightGCN). With the symmetric normalisation the transposes are the other block,
so they cost no memory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..errors import DataError

Norm = Literal["symmetric", "row"]


@dataclass(frozen=True)
class BipartiteGraph:
    """Normalised adjacency blocks of a user-item graph.

    Attributes:
        n_users, n_items: node counts U and I.
        user_item: CSR (U, I), ``A_ui``.
        item_user: CSR (I, U), ``A_iu``.
        user_degree, item_degree: float32 (U,), (I,) training degrees (duplicates removed).
        norm: which normalisation built the blocks.
        user_item_t, item_user_t: CSR (I, U) = ``A_ui^T`` and (U, I) = ``A_iu^T``, used by the backward passes.
    """

    n_users: int
    n_items: int
    user_item: torch.Tensor
    item_user: torch.Tensor
    user_degree: torch.Tensor
    item_degree: torch.Tensor
    norm: Norm
    user_item_t: torch.Tensor
    item_user_t: torch.Tensor

    def to(self, device: str | torch.device) -> "BipartiteGraph":
        return BipartiteGraph(
            self.n_users, self.n_items, self.user_item.to(device), self.item_user.to(device),
            self.user_degree.to(device), self.item_degree.to(device), self.norm,
            self.user_item_t.to(device), self.item_user_t.to(device),
        )

    def users_from_items(self, item_rows: torch.Tensor) -> torch.Tensor:
        """``A_ui @ X``: (I, d) -> (U, d), differentiable in X."""
        return _TransposedBackwardSpMM.apply(item_rows, self.user_item, self.user_item_t)

    def items_from_users(self, user_rows: torch.Tensor) -> torch.Tensor:
        """``A_iu @ X``: (U, d) -> (I, d), differentiable in X."""
        return _TransposedBackwardSpMM.apply(user_rows, self.item_user, self.item_user_t)

    @property
    def device(self) -> torch.device:
        return self.user_item.device


def _spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A @ X`` for CSR A and dense X, written straight into a fresh output.

    ``torch.sparse.mm`` zero-fills a result and copies it around the sparse kernel (three extra passes over the
    (rows, d) output, ~2x the kernel's own time at Netflix scale on CPU); ``beta=0`` makes the kernel ignore the
    uninitialised output's contents.
    """
    out = x.new_empty(a.shape[0], x.shape[1])
    return torch.addmm(out, a, x, beta=0.0, out=out)


class _TransposedBackwardSpMM(torch.autograd.Function):
    """``Y = A X`` for a constant sparse A, with ``dL/dX = A^T dL/dY`` from a precomputed CSR transpose."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, a: torch.Tensor, a_t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return _spmm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return _spmm(ctx.a_t, grad), None, None


class StaticAdjacency(nn.Module):
    """The two blocks of a :class:`BipartiteGraph` as dense entry lists (row, column, value), with the same
    ``users_from_items`` / ``items_from_users`` products computed by dense operators only: a gather of the source
    rows, a product with the entry values, and a scatter-add into the output rows (``index_add``)::

        (A X)_r = sum_{e: row_e = r} a_e X_{col_e}

    ``torch.compile(fullgraph=True)`` cannot take a sparse tensor into a graph; these dense entry lists it can (one
    fused gather-multiply-scatter kernel), so a static training step captures the propagation too. Autograd
    differentiates it as is (the backward is the same scatter-add over the columns: ``A^T G``). The sums run in a
    different order than the CSR kernel's, so results agree to float32 rounding. A module, so that ``.to(device)``
    moves its buffers with the model's; 2 x (16 + 4) bytes per edge.
    """

    def __init__(self, graph: BipartiteGraph) -> None:
        super().__init__()
        self.n_users, self.n_items = graph.n_users, graph.n_items
        for name, block in (("ui", graph.user_item), ("iu", graph.item_user)):
            crow = block.crow_indices()
            rows = torch.repeat_interleave(torch.arange(block.shape[0], device=crow.device), crow.diff())
            self.register_buffer(f"{name}_row", rows, persistent=False)
            self.register_buffer(f"{name}_col", block.col_indices().clone(), persistent=False)
            self.register_buffer(f"{name}_val", block.values().clone(), persistent=False)

    @staticmethod
    def _product(row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, x: torch.Tensor, n_rows: int
                 ) -> torch.Tensor:
        return x.new_zeros(n_rows, x.shape[1]).index_add(0, row, x.index_select(0, col) * val[:, None])

    def users_from_items(self, item_rows: torch.Tensor) -> torch.Tensor:
        """``A_ui @ X``: (I, d) -> (U, d)."""
        return self._product(self.ui_row, self.ui_col, self.ui_val, item_rows, self.n_users)

    def items_from_users(self, user_rows: torch.Tensor) -> torch.Tensor:
        """``A_iu @ X``: (U, d) -> (I, d)."""
        return self._product(self.iu_row, self.iu_col, self.iu_val, user_rows, self.n_items)


def _unique_edges(train: np.ndarray, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    train = np.asarray(train, dtype=np.int64).reshape(-1, 2)
    if len(train) and (train[:, 0].min() < 0 or train[:, 0].max() >= n_users):
        raise DataError(f"training pairs contain a user index outside [0, {n_users})")
    if len(train) and (train[:, 1].min() < 0 or train[:, 1].max() >= n_items):
        raise DataError(f"training pairs contain an item index outside [0, {n_items})")
    keys = np.unique(train[:, 0] * n_items + train[:, 1])  # sorted by (user, item): CSR order for A_ui
    return keys // n_items, keys % n_items


def _csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """CSR from (rows, cols) already sorted by row then column."""
    crow = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(crow), torch.from_numpy(cols.astype(np.int64)),
            torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)), size=shape, check_invariants=False,
        )


def build_graph(
    train: np.ndarray, n_users: int, n_items: int, norm: Norm = "symmetric", device: str | torch.device = "cpu"
) -> BipartiteGraph:
    """Build ``A_ui`` and ``A_iu`` from training pairs.

    Args:
        train: int64 (n, 2) array of (user, item) training pairs; duplicates count once.
        norm: ``symmetric`` (D_u^-1/2 R D_i^-1/2) or ``row`` (D_u^-1/2 R and D_i^-1/2 R^T, the original's).
    """
    if norm not in ("symmetric", "row"):
        raise ValueError(f"norm must be 'symmetric' or 'row', got {norm!r}")
    users, items = _unique_edges(train, n_users, n_items)
    du = np.bincount(users, minlength=n_users).astype(np.float64)
    di = np.bincount(items, minlength=n_items).astype(np.float64)
    if norm == "row":
        w_ui = (du[users] + 1e-8) ** -0.5
        w_iu = (di[items] + 1e-8) ** -0.5
    else:
        w_ui = w_iu = (du[users] * di[items]) ** -0.5
    order = np.lexsort((users, items))  # item-major order for the transposed block
    w_iu = np.broadcast_to(w_iu, users.shape)
    a_ui = _csr(users, items, w_ui, (n_users, n_items)).to(device)
    a_iu = _csr(items[order], users[order], w_iu[order], (n_items, n_users)).to(device)
    if norm == "symmetric":
        a_ui_t, a_iu_t = a_iu, a_ui  # equal weights on both blocks: each is the other's transpose
    else:
        a_ui_t = _csr(items[order], users[order], np.broadcast_to(w_ui, users.shape)[order],
                      (n_items, n_users)).to(device)
        a_iu_t = _csr(users, items, w_iu, (n_users, n_items)).to(device)
    return BipartiteGraph(
        n_users, n_items, a_ui, a_iu,
        torch.from_numpy(du.astype(np.float32)).to(device), torch.from_numpy(di.astype(np.float32)).to(device), norm,
        a_ui_t, a_iu_t,
    )


@dataclass(frozen=True)
class GraphEdges:
    """The E unique training edges of a bipartite graph, kept on its device to rebuild subgraphs of it quickly.

    Attributes:
        n_users, n_items: node counts U and I.
        users, items: int64 (E,) edge endpoints sorted by (user, item), the CSR order of ``A_ui``.
        item_major: int64 (E,) the permutation that sorts the edges by (item, user), the CSR order of ``A_iu``.
    """

    n_users: int
    n_items: int
    users: torch.Tensor
    items: torch.Tensor
    item_major: torch.Tensor

    @staticmethod
    def from_graph(graph: BipartiteGraph) -> "GraphEdges":
        """The edges stored in ``graph.user_item`` (any normalisation: only the sparsity pattern is read)."""
        crow = graph.user_item.crow_indices()
        users = torch.repeat_interleave(torch.arange(graph.n_users, device=crow.device), crow.diff())
        items = graph.user_item.col_indices()
        # (item, user) keys are unique, so this order is the item-major CSR order with no ties to break
        item_major = torch.argsort(items * graph.n_users + users, stable=True)
        return GraphEdges(graph.n_users, graph.n_items, users, items, item_major)

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def to(self, device: str | torch.device) -> "GraphEdges":
        return GraphEdges(self.n_users, self.n_items, self.users.to(device), self.items.to(device),
                          self.item_major.to(device))

    def subgraph(self, keep: torch.Tensor) -> BipartiteGraph:
        """The symmetric-normalised graph of the kept edges, renormalised by the degrees *inside* the subgraph:
        ``A' = D'^-1/2 (M ⊙ R) D'^-1/2`` with ``M`` the (E,) bool mask `keep` and ``D'`` the kept degrees (as SGL
        builds its augmented views). Built on the edges' device with no sort: masking keeps both CSR orders."""
        ku, ki = self.users[keep], self.items[keep]
        du = torch.bincount(ku, minlength=self.n_users).to(torch.float32)
        di = torch.bincount(ki, minlength=self.n_items).to(torch.float32)
        order = self.item_major[keep[self.item_major]]  # kept edges, still in (item, user) order
        ou, oi = self.users[order], self.items[order]
        a_ui = _csr_torch(ku, ki, (du[ku] * di[ki]).rsqrt(), (self.n_users, self.n_items))
        a_iu = _csr_torch(oi, ou, (du[ou] * di[oi]).rsqrt(), (self.n_items, self.n_users))
        return BipartiteGraph(self.n_users, self.n_items, a_ui, a_iu, du, di, "symmetric", a_iu, a_ui)


def _csr_torch(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """CSR from (rows, cols) tensors already sorted by row then column (on their device, no host round trip)."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0, out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, values, size=shape, check_invariants=False)


def joint_adjacency(train: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
    """The symmetric-normalised (U+I) x (U+I) adjacency ``D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` as CSR.

    Node order: users 0..U-1, then items U..U+I-1. Used to cross-check the block form (same products).
    """
    users, items = _unique_edges(train, n_users, n_items)
    n = n_users + n_items
    src = np.concatenate([users, items + n_users])
    dst = np.concatenate([items + n_users, users])
    deg = np.bincount(src, minlength=n).astype(np.float64)
    w = (deg[src] * deg[dst]) ** -0.5
    order = np.lexsort((dst, src))
    return _csr(src[order], dst[order], w[order], (n, n))


def csr_row_entries(a: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The stored entries of the given rows of CSR `a` as (position of the row in `rows`, column, value).

    Cost is proportional to the entries of those rows only (the row segments are read through the row pointers).
    """
    crow, col, val = a.crow_indices(), a.col_indices(), a.values()
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    n = int(lengths.sum())
    local = torch.repeat_interleave(torch.arange(len(rows), device=a.device), lengths)
    # offset of each entry inside its row, plus its row's start in the value array
    within = torch.arange(n, device=a.device) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    pos = torch.repeat_interleave(starts, lengths) + within
    return local, col[pos], val[pos]


def two_hop_block(first: torch.Tensor, second_t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Dense block ``S[rows][:, rows]`` (M, M) of the two-hop operator ``S = first @ second`` without forming S.

    ``second_t`` is ``second^T`` as CSR, so ``S[m, n] = sum_k first[m, k] second_t[n, k]``: the product of the
    rows' sparse entries in `first` with the same rows of `second_t` scattered densely. With ``first = A_ui`` and
    ``second_t = A_iu^T`` this is the user-user block through items (the full operator has tens of millions of
    entries at Netflix scale; a block of a few hundred masked users costs a few milliseconds).
    """
    k = first.shape[1]
    r1, c1, v1 = csr_row_entries(first, rows)
    left = torch.sparse_coo_tensor(torch.stack([r1, c1]), v1, (len(rows), k), check_invariants=False).coalesce()
    r2, c2, v2 = csr_row_entries(second_t, rows)
    right = torch.zeros(k, len(rows), dtype=v2.dtype, device=v2.device)
    right[c2, r2] = v2
    return torch.sparse.mm(left, right)
