"""Pure masking ops (`llmrec_local.graph.ops`)."""

import pytest
import torch

from llmrec_local.graph import sample_mask


def test_sample_mask_rate_and_training_flag():
    g = torch.Generator().manual_seed(0)
    assert not sample_mask(100, 0.5, generator=g, training=False).any()
    m = sample_mask(20000, 0.3, generator=g)
    assert 0.28 < m.float().mean() < 0.32
    with pytest.raises(ValueError):
        sample_mask(10, 1.5, generator=g)
