"""One training step (sample, forward, loss, backward, optimizer update): eager, compiled, or static and compiled whole.

The eager step is the reference; ``train.compile`` picks how the model's loss is run:

* ``off``: eager PyTorch, one operator (one kernel launch on a GPU) at a time.
* ``default``: ``torch.compile`` (TorchInductor) of the model's ``loss``; AOTAutograd compiles the matching backward,
  so forward and backward both run as fused generated kernels (C++/OpenMP on the CPU, Triton on a GPU). Graphs break
  where sizes depend on the data (below), and the pieces between breaks are compiled.
* ``reduce-overhead``: the **static step** where the model has one (MF, LightGCN, LLMRec without the MAE): padded
  batches of a fixed size and ``model.static_loss``, compiled as ONE graph (``fullgraph=True``, ``dynamic=False``;
  a graph break would be an error), its forward and backward replayed as CUDA graphs on CUDA (one launch each instead
  of hundreds of kernels). On the CPU there are no CUDA graphs: the whole-graph compile runs as fused C++ kernels.
  Models without a static loss (SGL, SimGCL, LLMRec with the MAE) get ``default`` plus CUDA graphs for the pieces of
  fixed size (graphs with batch-dependent sizes are left as fused kernels: cudagraph trees would record one per size).

The static step (``TrainStep(static=True)``; chosen by ``reduce-overhead``):

* Batch: ``TripleSampler.sample_padded`` makes the very draws of ``sample`` (same triples, same random stream
  afterwards) and pads the block of LLM triples to its most rows, ``int(batch_size * aug_sample_rate)`` (a drawn user
  without an LLM pair adds none), with a ``valid`` mask: every batch of a run has the same size.
* Loss (``LLMRec.static_loss``): every batch row is fused on its own (N user rows, 2N item rows) instead of the distinct
  nodes of ``torch.unique``; a distinct-node set padded to its static upper bound would cost the same, the bound being
  the row count. Cold nodes (no training edge, all-zero features) are masked by ``where`` instead of selected by
  ``nonzero``. Padding rows are ranked after every valid row in the pruned BPR terms (never kept) and masked out of the
  regulariser; the counts divided by (valid rows, kept rows: ``losses.keep_count_tensor``, float64 so that it is
  Python's ``int((1 - drop) n)`` exactly) are tensors. Padding contributes exactly zero to the loss and every gradient.
* Graph: a sparse tensor cannot enter a compiled graph, so the ID propagation runs over the graph's entries as dense
  lists (``graph.StaticAdjacency``: gather, scale, ``index_add``; built by ``model.prepare_static()``).
* Equality: the same triples and the same loss as eager up to float32 rounding (summation order):
  ``tests/train/test_static_step.py`` checks losses, parts and gradients (``rtol=1e-5, atol=1e-6``) and parameters
  after three AdamW steps, uncompiled (fast) and compiled whole (``aot_eager`` in CI; Inductor with
  ``LLMREC_ALL_COMPILE_TESTS=1``; CUDA graphs marked ``cuda``); ``torch._dynamo.explain``: 1 graph, 0 breaks.
* Cost: projecting every row instead of the distinct warm nodes does about 1.6x the eager step's GEMM FLOPs at Netflix
  scale (N = 1,126 user rows and 2,252 item rows vs about 1,000 + 1,070 distinct warm nodes), which a CPU pays; a GPU
  step is bound by launches, not FLOPs, and that is what the static step is for (measured on 2 loaded CPU cores, the
  static step's epoch was about 1.9x eager's: on a CPU use ``off`` or ``default``; docs/results.md). On CUDA, ``index_add`` sums with
  atomics, so static runs are not bitwise reproducible (eager CUDA runs are).
* Not inside the graph: the sampler (about 60-75 operators per step: rejection sampling of negatives and the LLM
  rows' compaction sync with the host) and the fused AdamW update (one kernel per step on the CPU, a few multi-tensor
  kernels on CUDA).

Where ``default`` breaks the eager loss (``torch._dynamo.explain`` on the tiny test models, torch 2.13): MF and
LightGCN 0 (one graph; LightGCN's torch.sparse CSR products are traced as extern calls); LLMRec 9 (``torch.unique`` of
the batch's nodes and ``nonzero`` of its warm rows have data-dependent sizes); SGL 15 (edge dropout builds new CSR
views: ``nonzero``, ``bincount``); SimGCL 4 (a sparse tensor crosses a graph boundary). With LLM triples the batch size
varies, so the first step compiles for static sizes and the second marks the varying sizes dynamic (``dynamic=None``).

Shapes: there is no partial last batch to pad or drop: every step samples a full batch, ``min(batch_size, users
with a training item)`` observed triples (a constant of the dataset; an epoch is the original's ``n_train //
batch_size + 1`` such draws), plus the LLM/noise triples.

Equality of ``default`` with eager: the same operations in a different evaluation order (fused reductions), so losses
and gradients agree to float32 rounding; ``tests/train/test_compiled.py`` checks ``rtol=1e-5, atol=1e-6``.
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
        # Drop the previous gradients first: nothing reads them again, and with CUDA graphs they live in the graphs'
        # memory pool, which the next replay reuses.
        self.optimizer.zero_grad(set_to_none=True)
        batch = self.sample()
        if self.static:
            loss, parts = self.loss_fn(batch)
        else:
            loss, parts = self.loss_fn(batch, generator=self.sampler.gen, training=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), parts
