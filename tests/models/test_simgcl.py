"""SimGCL: the noise (length, sign alignment, off when not training), the clean encoder against a dense LightGCN
transcription without layer 0, the loss (parts, gradients, determinism by generator) and CPU/CUDA parity. Training on
planted data: tests/train/test_train.py."""

import pytest
import torch
from testkit.graphs import I, U, fixed_batch, random_train, seeded_model

from llmrec_local.models.simgcl import uniform_noise


def test_noise_has_length_eps_and_the_sign_of_its_input():
    x = torch.randn(200, 16)
    delta = uniform_noise(x, 0.1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(delta.norm(dim=1), torch.full((200,), 0.1))
    assert torch.equal(torch.sign(delta), torch.sign(x))  # U(0, 1) > 0 almost surely: every entry is aligned
    x[0, :8] = 0.0  # zero entries get no noise, so the row is shorter than eps
    delta = uniform_noise(x, 0.1, generator=torch.Generator().manual_seed(0))
    assert bool((delta[0, :8] == 0).all()) and float(delta[0].norm()) < 0.1
    assert torch.equal(delta, uniform_noise(x, 0.1, generator=torch.Generator().manual_seed(0)))


def test_noise_is_zero_when_not_training():
    x = torch.randn(5, 4)
    assert torch.equal(uniform_noise(x, 0.1, generator=None, training=False), torch.zeros(5, 4))
    model = seeded_model("simgcl", random_train())
    clean = model.embeddings()
    for a, b in zip(model.encode(perturbed=True, training=False), clean):
        assert torch.equal(a, b)
    noisy = model.encode(perturbed=True, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(noisy[0], clean[0])


def test_clean_view_is_the_mean_of_layers_1_to_L():
    train = random_train()
    model = seeded_model("simgcl", train, n_layers=2)
    r = torch.zeros(U, I)
    r[train[:, 0], train[:, 1]] = 1
    a = r * (r.sum(1, keepdim=True) * r.sum(0, keepdim=True)).clamp(min=1).rsqrt()
    eu1, ei1 = a @ model.item, a.T @ model.user
    eu2, ei2 = a @ ei1, a.T @ eu1
    hu, hi = model.embeddings()
    torch.testing.assert_close(hu, ((eu1 + eu2) / 2).detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(hi, ((ei1 + ei2) / 2).detach(), atol=1e-6, rtol=1e-5)


def test_loss_is_bpr_plus_weighted_cl_and_gradients_flow():
    train = random_train()
    model = seeded_model("simgcl", train)
    batch = fixed_batch()
    total, parts = model.loss(batch, generator=torch.Generator().manual_seed(0))
    assert set(parts) == {"bpr", "reg", "cl"} and float(parts["cl"]) > 0
    torch.testing.assert_close(total.detach(), parts["bpr"] + parts["reg"] + parts["cl"])
    total.backward()
    assert float(model.user.grad[batch.users].abs().sum()) > 0 and bool(torch.isfinite(model.item.grad).all())
    plain = seeded_model("simgcl", train, cl_weight=0.0)
    plain_total, plain_parts = plain.loss(batch, generator=torch.Generator().manual_seed(0))
    assert set(plain_parts) == {"bpr", "reg"}
    plain_total.backward()
    torch.testing.assert_close(plain_parts["bpr"], parts["bpr"])  # BPR uses the clean view
    assert float((model.user.grad - plain.user.grad).abs().max()) > 1e-6


def test_loss_is_deterministic_for_a_fixed_generator():
    model = seeded_model("simgcl", random_train())
    batch = fixed_batch()
    a = model.loss(batch, generator=torch.Generator().manual_seed(5))[1]["cl"]
    b = model.loss(batch, generator=torch.Generator().manual_seed(5))[1]["cl"]
    c = model.loss(batch, generator=torch.Generator().manual_seed(6))[1]["cl"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_constructor_checks_its_ranges():
    with pytest.raises(ValueError, match="n_layers"):
        seeded_model("simgcl", random_train(), n_layers=0)
    with pytest.raises(ValueError, match="noise_eps"):
        seeded_model("simgcl", random_train(), noise_eps=-0.1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_loss_and_gradients_match_cpu_on_cuda():
    """The noise comes from a device generator, so the CPU and CUDA views differ; without noise (training=False, and
    eps = 0 while training) the loss, its parts and the gradients agree to float32 rounding, and a noisy CUDA loss is
    finite and reproducible from its generator."""
    train = random_train()
    cpu, gpu = seeded_model("simgcl", train), seeded_model("simgcl", train).to("cuda")
    for eps, training in ((0.0, True), (0.1, False)):
        cpu.noise_eps = gpu.noise_eps = eps
        results = []
        for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
            model.zero_grad(set_to_none=True)
            total, parts = model.loss(fixed_batch(dev), generator=torch.Generator(device=dev).manual_seed(0),
                                      training=training)
            total.backward()
            results.append((total.detach().cpu(), {k: v.cpu() for k, v in parts.items()},
                            model.user.grad.cpu(), model.item.grad.cpu()))
        (t0, p0, gu0, gi0), (t1, p1, gu1, gi1) = results
        torch.testing.assert_close(t1, t0, rtol=1e-4, atol=1e-6)
        for key in p0:
            torch.testing.assert_close(p1[key], p0[key], rtol=1e-4, atol=1e-6, msg=key)
        torch.testing.assert_close(gu1, gu0, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gi1, gi0, rtol=1e-4, atol=1e-6)
    gpu.noise_eps = 0.1
    runs = [gpu.loss(fixed_batch("cuda"), generator=torch.Generator(device="cuda").manual_seed(4))[0] for _ in range(2)]
    assert bool(torch.isfinite(runs[0])) and torch.equal(runs[0], runs[1])
