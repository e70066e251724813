"""Throughput of the embed stage's encoders (items per second), without the row cache.

Text: ``--n-text`` generated item descriptions (``"<title> (<year>). Genres: ..."``, 10-20 words) through the text
encoder. Images: ``--n-images`` generated poster PNGs (``--image-size`` pixels, random content) decoded,
preprocessed and encoded from disk, i.e. the same path the stage takes. One warm-up batch each is not timed.

With no arguments: the embedded all-MiniLM-L6-v2 and a tiny random CLIP (64-d, 64x64 input, 2 layers) written to
a temporary folder, on the ``auto`` device. The last printed line is a JSON object with ``text_items_per_s`` and
``image_items_per_s`` plus the settings used.

    python benchmarks/embed_speed.py
    python benchmarks/embed_speed.py --image-model ~/models/CLIP-ViT-B-32-laion2B-s34B-b79K --device cuda
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from llmrec_local.embed.config import EmbedConfig
from llmrec_local.embed.stage import build_image_encoder, build_text_encoder

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-model", default="all-minilm-l6-v2", help="alias or local folder")
    parser.add_argument("--image-model", default=None, help="alias, local-dir folder or checkpoint "
                                                            "(default: a tiny random CLIP)")
    parser.add_argument("--image-arch", default=None, help="open_clip architecture of a checkpoint file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-text", type=int, default=512)
    parser.add_argument("--n-images", type=int, default=256)
    parser.add_argument("--image-size", type=int, nargs=2, default=(300, 450), metavar=("W", "H"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="embed_speed_") as tmp:
        tmp_path = Path(tmp)
        image_model = args.image_model
        if image_model is None:
            from llmrec_local.embed.image import save_random_clip

            image_model = str(save_random_clip(tmp_path / "tiny-clip"))
        config = EmbedConfig(text_model=args.text_model, image_model=image_model, image_arch=args.image_arch,
                             sources=("item_text", "item_image"), device=args.device, batch_size=args.batch_size)
        result: dict[str, object] = {}

        text_encoder = build_text_encoder(config, progress=False)
        texts = item_texts(args.n_text)
        text_encoder.encode(texts[: args.batch_size])  # warm-up: model load, first-call allocations
        start = time.perf_counter()
        vectors = text_encoder.encode(texts)
        text_s = time.perf_counter() - start
        result.update(text_items_per_s=round(len(texts) / text_s, 1), text_model=text_encoder.name,
                      text_dim=int(vectors.shape[1]))

        image_encoder = build_image_encoder(config, progress=False)
        folder = tmp_path / "posters"
        folder.mkdir()
        posters = poster_files(folder, args.n_images, tuple(args.image_size))
        image_encoder.encode_files(posters[: args.batch_size])
        start = time.perf_counter()
        image_vectors, ok = image_encoder.encode_files(posters)
        image_s = time.perf_counter() - start
        assert ok.all()
        result.update(image_items_per_s=round(len(posters) / image_s, 1), image_model=image_encoder.name,
                      image_dim=int(image_vectors.shape[1]))
        result.update(device=text_encoder.device, dtype=text_encoder.dtype, batch_size=args.batch_size,
                      n_text=len(texts), n_images=len(posters), image_size=list(args.image_size),
                      torch_threads=torch.get_num_threads())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
