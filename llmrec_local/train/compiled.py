"""One training step (sample, forward, loss, backward, optimizer update), eager or compiled with ``torch.compile``.

The eager step is the reference; ``train.compile`` picks how the model's loss is run:

* ``off``: eager PyTorch, one operator (one kernel launch on a GPU) at a time.
* ``default``: ``torch.compile`` (TorchInductor) of the model's ``loss``; AOTAutograd compiles the matching backward,
  so forward and backward both run as fused generated kernels (C++/OpenMP on the CPU, Triton on a GPU).
* ``reduce-overhead``: the same, and on CUDA each compiled graph of fixed sizes is replayed as a CUDA graph (one
  launch for the graph's kernels; graphs with batch-dependent sizes are left as fused kernels, see below). On the CPU
  there are no CUDA graphs and this compiles as ``default``.

What is compiled, and where it breaks (``torch._dynamo.explain`` on the tiny test models, torch 2.13):

* MF and LightGCN: the whole loss is one graph, 0 graph breaks; LightGCN's torch.sparse CSR products (a custom
  autograd Function around ``addmm``) are traced as extern calls, so the dense parts around them are fused.
* LLMRec: ``torch.unique`` (the batch's distinct nodes) and ``nonzero`` (its warm rows) have data-dependent output
  sizes, so the loss is split at them (9 graph breaks, 10 graphs): the dense pieces in between (projections,
  normalisation, fusion, the pruned BPR block, the regularisers) are compiled, the index bookkeeping runs eagerly.
* SGL: edge dropout builds new CSR views (``nonzero``, ``bincount``): 15 breaks. SimGCL: 4 (a sparse tensor crosses
  a graph boundary).

Not compiled, on purpose: the sampler (rejection sampling of negatives is a data-dependent loop that syncs with the
host) and the optimizer update (``fused=True`` AdamW is already one kernel per step on the CPU and a few
multi-tensor kernels on CUDA).

Shapes: there is no partial last batch to pad or drop: every step samples a full batch, ``min(batch_size, users
with a training item)`` observed triples (a constant of the dataset; an epoch is the original's ``n_train //
batch_size + 1`` such draws), plus a number of LLM/noise triples that can vary (users without an LLM pair), so the
first step compiles for static sizes and the second marks the varying sizes dynamic (``dynamic=None``, torch's
automatic dynamic shapes); no batch is padded or dropped, so every step computes exactly the eager loss. The
pieces whose sizes vary (LLMRec's distinct nodes, SGL's views, the LLM triples) are therefore not CUDA-graphed; a
fully static step (padded distinct-node sets, a fixed count of LLM triples with masking) is the next step for the
GPU launch target; see docs/results.md.

Equality with eager: the same operations in a different evaluation order (fused reductions), so losses and gradients
agree to float32 rounding; ``tests/train/test_compiled.py`` checks ``rtol=1e-5, atol=1e-6`` on the tiny models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import torch

from ..models import Recommender
from ..models.base import PaddedBatch, TripleBatch
from .sampling import TripleSampler

log = logging.getLogger(__name__)

CompileMode = Literal["off", "default", "reduce-overhead"]
COMPILE_MODES: tuple[str, ...] = ("off", "default", "reduce-overhead")

LossFn = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def compiled_loss(model: Recommender, mode: CompileMode) -> LossFn:
    """``model.loss``, or its ``torch.compile`` form for ``mode`` (compiled lazily on the first call)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {list(COMPILE_MODES)}, got {mode!r}")
    if mode == "off":
        return model.loss
    device = next(model.parameters()).device
    if mode == "reduce-overhead" and device.type != "cuda":
        log.info("compile='reduce-overhead' uses CUDA graphs only on CUDA; on %s it is compile='default'", device)
    if mode == "default":
        return torch.compile(model.loss, dynamic=None)
    # mode="reduce-overhead", spelled as its Inductor options plus one: a graph whose sizes vary from batch to batch
    # (LLMRec's distinct-node pieces) is not recorded as a CUDA graph, since cudagraph trees would record it anew for
    # every size it meets (a recording costs far more than the launches it saves); it runs as fused kernels.
    return torch.compile(model.loss, dynamic=None, options={"triton.cudagraphs": True,
                                                            "triton.cudagraph_skip_dynamic_graphs": True})


def static_compiled_loss(model: Recommender, mode: CompileMode) -> Callable[[PaddedBatch], tuple[
        torch.Tensor, dict[str, torch.Tensor]]]:
    """``model.static_loss``, or its whole-graph ``torch.compile`` form (``fullgraph=True``: a graph break is an
    error; ``dynamic=False``: every step has the same shapes); ``reduce-overhead`` replays it as CUDA graphs on CUDA."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {list(COMPILE_MODES)}, got {mode!r}")
    if not model.has_static_loss:
        raise ValueError(f"{type(model).__name__} (as configured) has no static loss; use static=False")
    model.prepare_static()
    if mode == "off":
        return model.static_loss
    options = {"triton.cudagraphs": True} if mode == "reduce-overhead" else {}
    return torch.compile(model.static_loss, fullgraph=True, dynamic=False, options=options)


class TrainStep:
    """The training step of the trainer (and of benchmarks/train_speed.py): ``step() -> (loss, parts)``.

    Args:
        model: the recommender (its parameters are the optimizer's).
        optimizer: e.g. :func:`llmrec_local.train.stage.make_optimizer`.
        sampler: draws each step's triples; ``batch_size``, ``aug_sample_rate``, ``noise_rate`` as in TrainConfig.
        compile: ``off`` | ``default`` | ``reduce-overhead`` (module docstring).
        static: run the static step (padded batches, ``model.static_loss``); None (default): exactly when
            ``compile='reduce-overhead'`` and the model has a static loss. ``static=True, compile='off'`` runs the
            static loss eagerly (how the tests check it against the eager loss quickly).
    """

    def __init__(self, model: Recommender, optimizer: torch.optim.Optimizer, sampler: TripleSampler, *,
                 batch_size: int, aug_sample_rate: float = 0.0, noise_rate: float = 0.0,
                 compile: CompileMode = "off", static: bool | None = None) -> None:
        self.model, self.optimizer, self.sampler = model, optimizer, sampler
        self.batch_size, self.aug_sample_rate, self.noise_rate = batch_size, aug_sample_rate, noise_rate
        if static is None:
            static = compile == "reduce-overhead" and model.has_static_loss
            if compile == "reduce-overhead" and not static:
                log.info("%s (as configured) has no static loss: compile='reduce-overhead' graphs its fixed-size "
                         "pieces only", type(model).__name__)
        self.static = static
        self.loss_fn: LossFn = static_compiled_loss(model, compile) if static else compiled_loss(model, compile)
        # CUDA graphs reuse their output buffers: a new step must be announced, else the next replay would overwrite
        # tensors the previous step still holds (torch's documented training-loop pattern).
        self.mark_step = compile == "reduce-overhead" and sampler.device.type == "cuda"

    def sample(self) -> TripleBatch | PaddedBatch:
        if self.static:
            return self.sampler.sample_padded(self.batch_size, self.aug_sample_rate, self.noise_rate)
        return self.sampler.sample(self.batch_size, self.aug_sample_rate, self.noise_rate)

    def __call__(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sample a batch, compute the loss and its gradients, update the parameters; the (detached) loss and parts."""
        if self.mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        batch = self.sample()
        if self.static:
            loss, parts = self.loss_fn(batch)
        else:
            loss, parts = self.loss_fn(batch, generator=self.sampler.gen, training=True)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), parts
