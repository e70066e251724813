"""User-item bipartite graph: normalised adjacency blocks (torch.sparse CSR) and pure masking ops."""

from .adjacency import BipartiteGraph, build_graph, joint_adjacency, two_hop_block
from .ops import sample_mask

__all__ = ["BipartiteGraph", "build_graph", "joint_adjacency", "two_hop_block", "sample_mask"]
