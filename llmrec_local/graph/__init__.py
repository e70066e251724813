"""User-item bipartite graph: normalised adjacency blocks (torch.sparse CSR, or dense entry lists for compiled static
steps) and pure masking ops."""

from .adjacency import BipartiteGraph, GraphEdges, StaticAdjacency, build_graph, joint_adjacency, two_hop_block
from .ops import drop_edges, sample_mask

__all__ = [
    "BipartiteGraph", "GraphEdges", "StaticAdjacency", "build_graph", "joint_adjacency", "two_hop_block", "drop_edges",
    "sample_mask",
]
