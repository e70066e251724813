"""The training step (llmrec_local.train.compiled): eager is the reference; torch.compile must give the same losses,
gradients and updated parameters for every model, on the CPU and (marked cuda) on CUDA with CUDA graphs.

Tolerance: compiled kernels fuse and reorder float32 reductions, so values agree to rounding, not bit for bit:
``rtol=1e-5, atol=1e-6`` on losses, gradients and parameters after two AdamW steps (the observed differences on
these tiny models are below 1e-7). The compile tests take tens of seconds each (Inductor generates and builds C++),
hence ``slow``.
"""

import os

import numpy as np
import pytest
import torch
from testkit.graphs import I, PARAM_TOL, TOL, U, random_side, random_train, seeded_model

from llmrec_local.config import hash_dict
from llmrec_local.train import TrainConfig, TripleSampler, make_optimizer, train_config_hash
from llmrec_local.train.compiled import TrainStep, compiled_loss

#: model name, constructor arguments (LLMRec gets random side features; fixed has its MAE on)
CASES = {
    "mf": ("mf", {}),
    "lightgcn": ("lightgcn", {}),
    "sgl": ("sgl", {}),
    "simgcl": ("simgcl", {}),
    "llmrec-faithful": ("llmrec", {"variant": "faithful"}),
    "llmrec-fixed-mae": ("llmrec", {"variant": "fixed", "mask_rate": 0.3, "mae_weight": 0.1}),
}


def _step(case: str, compile: str, device: str = "cpu") -> TrainStep:
    """The same seeded model, optimizer and sampler (with LLM triples for every user) on every call."""
    name, kwargs = CASES[case]
    train = random_train()
    extra = random_side() if name == "llmrec" else {}
    model = seeded_model(name, train, **kwargs, **extra).to(device)
    rng = np.random.default_rng(1)
    aug = np.stack([np.arange(U), rng.integers(0, I, U), rng.integers(0, I, U)], 1)
    gen = torch.Generator(device=device).manual_seed(5)
    sampler = TripleSampler(train, U, I, gen, aug)
    opt = make_optimizer(model, 0.01, model.default_weight_decay)
    return TrainStep(model, opt, sampler, batch_size=16, aug_sample_rate=0.5, compile=compile)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().cpu() for k, p in model.named_parameters() if p.grad is not None}


def _check_same_as_eager(case: str, mode: str) -> None:
    eager, comp = _step(case, "off"), _step(case, mode)
    for _ in range(2):  # the second step meets new batch sizes (LLM triples vary): the dynamic-shape recompile
        le, pe = eager()
        lc, pc = comp()
        torch.testing.assert_close(lc, le, **TOL)
        assert pe.keys() == pc.keys()
        for k in pe:
            torch.testing.assert_close(pc[k], pe[k], **TOL)
        ge, gc = _grads(eager.model), _grads(comp.model)
        assert ge.keys() == gc.keys() and len(ge) >= 2
        for k in ge:
            torch.testing.assert_close(gc[k], ge[k], **TOL, msg=f"gradient of {k}")
    for (k, a), b in zip(eager.model.named_parameters(), comp.model.parameters()):
        torch.testing.assert_close(b.detach(), a.detach(), **PARAM_TOL, msg=f"parameter {k} after two steps")


def test_eager_step_is_the_loop_it_replaced():
    """compile='off' is the trainer's former loop body: sample, loss, zero_grad, backward, step (bit for bit)."""
    step = _step("llmrec-faithful", "off")
    ref = _step("llmrec-faithful", "off")
    for _ in range(2):
        loss, _ = step()
        batch = ref.sampler.sample(16, 0.5)
        ref_loss, _ = ref.model.loss(batch, generator=ref.sampler.gen, training=True)
        ref.optimizer.zero_grad(set_to_none=True)
        ref_loss.backward()
        ref.optimizer.step()
        assert torch.equal(loss, ref_loss.detach())
    assert all(torch.equal(a, b) for a, b in zip(step.model.parameters(), ref.model.parameters()))


def test_compile_setting_is_runtime_only_and_checked():
    """The setting leaves config hashes as they were (off is the default; compiling is a runtime choice, like the
    device), and a bad mode is named."""
    base = TrainConfig()
    assert train_config_hash(TrainConfig(compile="default")) == train_config_hash(base)
    assert "compile" not in hash_dict(base)
    model = seeded_model("mf", random_train())
    assert compiled_loss(model, "off") == model.loss
    assert callable(compiled_loss(model, "reduce-overhead"))  # torch.compile checks the Inductor option names here
    with pytest.raises(ValueError, match="compile must be one of"):
        compiled_loss(model, "max-autotune")  # type: ignore[arg-type]


#: Compiling on CPU (Inductor, gcc) costs one to several minutes per case; CI checks the two main models and
#: ``LLMREC_ALL_COMPILE_TESTS=1`` checks every case (all six passed on 2026-12-02 on CPU).
CI_CASES = ("lightgcn", "llmrec-faithful")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_compiled_step_equals_eager_on_cpu(case):
    if case not in CI_CASES and os.environ.get("LLMREC_ALL_COMPILE_TESTS") != "1":
        pytest.skip(f"{case}: set LLMREC_ALL_COMPILE_TESTS=1 to compile every model (minutes each on CPU)")
    torch._dynamo.reset()
    _check_same_as_eager(case, "default")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", ["mf", "lightgcn", "llmrec-faithful"])  # the GPU check's time is short
def test_compiled_step_with_cuda_graphs_equals_eager_on_cuda(case):
    """reduce-overhead on CUDA (for these models the static step: the loss compiled whole and replayed as CUDA
    graphs; test_static_step.py has its padded-batch cases) against the eager step on CUDA (the CUDA sampler draws
    from CUDA's random stream, so the CPU's triples differ: eager CUDA is the reference here)."""
    torch._dynamo.reset()
    eager, comp = _step(case, "off", "cuda"), _step(case, "reduce-overhead", "cuda")
    for _ in range(3):  # cudagraph trees record on the second call and replay from the third
        le, _ = eager()
        lc, _ = comp()
        torch.testing.assert_close(lc, le, **TOL)
        ge, gc = _grads(eager.model), _grads(comp.model)
        for k in ge:
            torch.testing.assert_close(gc[k], ge[k], **TOL, msg=f"gradient of {k}")
