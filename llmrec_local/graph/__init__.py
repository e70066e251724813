"""User-item bipartite graph: normalised adjacency blocks (torch.sparse CSR) and pure masking ops."""

from .adjacency import BipartiteGraph, build_graph, csr_row_entries, joint_adjacency, two_hop_block
from .ops import mask_rows, sample_mask

__all__ = ["BipartiteGraph", "build_graph", "csr_row_entries", "joint_adjacency", "two_hop_block", "mask_rows",
           "sample_mask"]
