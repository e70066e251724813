"""Pure, stochastic-by-generator feature ops (they never modify their inputs and are identities when not training)."""

from __future__ import annotations

import torch


def sample_mask(
    n: int, rate: float, *, generator: torch.Generator | None, training: bool = True,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Bool (n,) mask with each entry True independently with probability `rate` (all False when not training)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"mask rate must be in [0, 1], got {rate}")
    if not training or rate == 0.0 or n == 0:
        return torch.zeros(n, dtype=torch.bool, device=device)
    return torch.rand(n, generator=generator, device=device) < rate


def mask_rows(x: torch.Tensor, mask: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """A copy of `x` (n, d) whose rows where `mask` (n,) is True are replaced by `token` (d,).

    ``torch.where`` builds a new tensor, so the caller's feature buffer is never overwritten (the original code
    masked its persistent buffers in place, so masks accumulated across steps and leaked into evaluation).
    Gradients flow to `token` through the masked rows.
    """
    if mask.shape != x.shape[:1]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match {x.shape[0]} rows")
    return torch.where(mask[:, None], token.to(x.dtype).expand_as(x), x)
