"""CUDA paths against the CPU path that the rest of the suite checks: the same model, loss, gradients, ranking,
training loop and encoders give the same results on a GPU. Skipped where torch sees no CUDA device (CI); run on the
GPU check machine by ``benchmarks/gpu_checks.sh``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec_local.evaluate.ranking import PairIndex, rank_and_score
from llmrec_local.models import TripleBatch, build_model

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

U, I = 40, 60


def _side_data(seed: int = 0) -> tuple[np.ndarray, dict]:
    """A small graph with cold items (no training edge) and every kind of side feature."""
    rng = np.random.default_rng(seed)
    train = np.array([[u, i] for u in range(U) for i in range(I) if rng.random() < 0.12 and i % 7 != 3])
    feats = {
        "item_image": rng.standard_normal((I, 12)).astype(np.float32),
        "item_text": rng.standard_normal((I, 16)).astype(np.float32),
        "item_attributes": {f"f{k}": rng.standard_normal((I, 10)).astype(np.float32) for k in range(3)},
        "user_profiles": rng.standard_normal((U, 20)).astype(np.float32),
    }
    return train, feats


def _batch(device: str, seed: int = 1, n: int = 64, n_observed: int = 56) -> TripleBatch:
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(0, U, (n,), generator=g)
    pos, neg = torch.randint(0, I, (n,), generator=g), torch.randint(0, I, (n,), generator=g)
    return TripleBatch(users.to(device), pos.to(device), neg.to(device), n_observed)


@pytest.mark.parametrize("variant", ["faithful", "fixed"])
def test_llmrec_loss_gradients_and_embeddings_match_cpu(variant: str) -> None:
    """One model, copied to the GPU: loss parts, every parameter gradient and the fused embeddings agree with the
    CPU to float32 rounding (relative 1e-4)."""
    train, feats = _side_data()
    models = []
    for _ in range(2):  # two identical CPU builds (sparse CSR graphs cannot be deep-copied); one moves to the GPU
        torch.manual_seed(0)
        models.append(build_model("llmrec", n_users=U, n_items=I, train=train, variant=variant, **feats))
    cpu, gpu = models[0], models[1].to("cuda")
    losses = {}
    for name, model, dev in (("cpu", cpu, "cpu"), ("cuda", gpu, "cuda")):
        model.zero_grad(set_to_none=True)
        total, parts = model.loss(_batch(dev))
        total.backward()
        losses[name] = (total.detach().cpu(), {k: v.cpu() for k, v in parts.items()})
    assert set(losses["cpu"][1]) == set(losses["cuda"][1]) and {"bpr", "mm", "aug", "featreg"} <= set(losses["cpu"][1])
    torch.testing.assert_close(losses["cuda"][0], losses["cpu"][0], rtol=1e-4, atol=1e-6)
    for key, value in losses["cpu"][1].items():
        torch.testing.assert_close(losses["cuda"][1][key], value, rtol=1e-4, atol=1e-7, msg=key)
    grads = dict(gpu.named_parameters())
    for name, p in cpu.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(grads[name].grad.cpu(), p.grad, rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():
        for a, b in zip(cpu.embeddings(), gpu.embeddings()):
            torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-6)


def test_fixed_mae_runs_on_cuda_and_leaves_inputs_untouched() -> None:
    train, feats = _side_data()
    torch.manual_seed(0)
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant="fixed", mask_rate=0.3, mae_weight=0.5,
                        device=torch.device("cuda"), **feats)
    before = {k: v.clone() for k, v in model.named_buffers() if k.startswith(("raw_", "feat_"))}
    gen = torch.Generator(device="cuda").manual_seed(0)
    total, parts = model.loss(_batch("cuda"), generator=gen)
    total.backward()
    assert "mae" in parts and torch.isfinite(parts["mae"]) and float(parts["mae"]) > 0
    assert model.mask_token["attr"].grad is not None and float(model.mask_token["attr"].grad.abs().sum()) > 0
    for k, v in model.named_buffers():
        if k in before:
            assert torch.equal(v, before[k]), k


def test_full_ranking_matches_cpu() -> None:
    """Ranking in CUDA blocks (4096 users) gives the CPU's per-user metrics, train and validation items masked."""
    rng = np.random.default_rng(0)
    n_users, n_items = 700, 900
    pairs = lambda n: np.stack([rng.integers(0, n_users, n), rng.integers(0, n_items, n)], 1)  # noqa: E731
    train, val, test = pairs(9000), pairs(1500), pairs(2000)
    user, item = torch.randn(n_users, 32, dtype=torch.float64), torch.randn(n_items, 32, dtype=torch.float64)
    out = {}
    for dev in ("cpu", "cuda"):
        idx = lambda p: PairIndex.build(p, n_users, n_items, dev)  # noqa: E731
        users, per_user = rank_and_score(user.to(dev), item.to(dev), idx(test), [idx(train), idx(val)],
                                         with_paper_ndcg=True)
        out[dev] = (users.cpu(), {k: v.cpu() for k, v in per_user.items()})
    assert torch.equal(out["cpu"][0], out["cuda"][0])
    assert set(out["cpu"][1]) == set(out["cuda"][1])
    for key, value in out["cpu"][1].items():
        torch.testing.assert_close(out["cuda"][1][key], value, msg=key)


def _tiny_sentence_transformer(folder: Path) -> Path:
    """A 2-layer random BERT with a word-level vocabulary, saved as a sentence-transformers folder (mean pooling)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizer

    words = "the a of and comedy drama war space garden quiet funny battle pirates laugh loud business".split()
    hf = folder / "hf"
    hf.mkdir(parents=True)
    (hf / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(hf / "vocab.txt")).save_pretrained(str(hf))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(hf))
    st = SentenceTransformer(modules=[models.Transformer(str(hf), max_seq_length=32), models.Pooling(32, "mean")],
                             device="cpu")
    st.save(str(folder / "st"))
    return folder / "st"


def test_text_encoder_float16_on_cuda_matches_float32_on_cpu(tmp_path: Path) -> None:
    from llmrec_local.embed.text import TextEncoder

    path = _tiny_sentence_transformer(tmp_path)
    texts = ["a quiet garden", "space pirates and the battle", "laugh out loud comedy", "funny business drama"]
    cpu = TextEncoder(path, name="tiny", device="cpu", batch_size=2)
    gpu = TextEncoder(path, name="tiny", device="cuda", batch_size=2)  # dtype auto -> float16 on CUDA
    assert gpu.dtype == "float16" and cpu.dtype == "float32"
    a, b = cpu.encode(texts), gpu.encode(texts)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (4, 32)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.999, cosine
    assert cpu.identity != gpu.identity  # float16 and float32 vectors never share a cache entry


def test_image_encoder_on_cuda_matches_cpu(tmp_path: Path) -> None:
    pytest.importorskip("open_clip")
    from PIL import Image

    from llmrec_local.embed.image import ImageEncoder, save_random_clip

    folder = save_random_clip(tmp_path / "clip", seed=0)
    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"p{k}.png")
        Image.fromarray(rng.integers(0, 256, (72, 48, 3), dtype=np.uint8)).save(paths[-1])
    a, ok_a = ImageEncoder(folder, name="tiny-clip", device="cpu", progress=False).encode_files(paths)
    b, ok_b = ImageEncoder(folder, name="tiny-clip", device="cuda", progress=False).encode_files(paths)
    assert ok_a.all() and ok_b.all() and a.shape == b.shape == (3, 64)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.999, cosine


def test_text_encoder_float16_passes_on_cuda(tmp_path: Path) -> None:
    """Many passes on CUDA in float16: the weights run in half precision, each pass of the pipelined `encode` (pass
    k+1 tokenized while pass k runs) equals `encode_batch` of its texts bit for bit, the rows come back in input
    order as float32 unit vectors, close to float32 on the CPU."""
    import torch

    from llmrec_local.embed.text import TextEncoder

    path = _tiny_sentence_transformer(tmp_path)
    words = "the quiet garden space pirates battle funny business drama comedy laugh loud war".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(37)]
    gpu = TextEncoder(path, name="tiny", device="cuda", dtype="float16", batch_size=4, progress=False)
    cpu = TextEncoder(path, name="tiny", device="cpu", batch_size=4, progress=False)
    vectors = gpu.encode(texts)
    assert next(gpu._load().parameters()).dtype == torch.float16
    assert vectors.dtype == np.float32 and vectors.shape == (37, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for rows in gpu.batches(texts):
        assert np.array_equal(vectors[rows], gpu.encode_batch([texts[i] for i in rows]))
    reference = cpu.encode(texts)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert (vectors * reference).sum(1).min() > 0.999
