"""Image encoder over local open_clip weights (the only module that imports ``open_clip``); never a download.

Two kinds of local weights are accepted:

* a folder usable as open_clip's ``local-dir:`` (``open_clip_config.json`` with ``model_cfg`` and
  ``preprocess_cfg``, plus ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``), which carries its
  own architecture and preprocessing;
* a checkpoint file (``.safetensors``/``.bin``/``.pt``) plus an open_clip architecture name (``ViT-B-32``, ...),
  built with ``pretrained=<file>``.

Each image goes through the model's evaluation transform (resize, center crop, normalise) and
``model.encode_image``: ``(B, 3, S, S) -> (B, embed_dim)``; with ``normalize=True`` each row is scaled to unit L2
norm (``v / max(||v||_2, eps)``), as CLIP features are compared by cosine. A file that is missing or cannot be
decoded gives a zero row and ``ok[i] = False`` instead of failing the batch: posters are often incomplete.

:func:`save_random_clip` writes a tiny randomly initialised CLIP as a ``local-dir:`` folder (tests, benchmark).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelNotFoundError
from ..hashing import stable_hash
from .text import DType, resolve_device, resolve_dtype, weight_digests

log = logging.getLogger(__name__)

LOCAL_DIR_CONFIG = "open_clip_config.json"


def _open_clip() -> Any:
    import open_clip

    return open_clip


class ImageEncoder:
    """open_clip image tower from local weights.

    Args:
        path: a ``local-dir`` folder or a checkpoint file.
        arch: open_clip architecture name; required for a checkpoint file, ignored for a folder.
        name: alias or folder name recorded in manifests.
        model_id: upstream identity (informational).
        device, dtype: as for :class:`~llmrec_local.embed.text.TextEncoder` (float16 runs under CUDA autocast).
        batch_size: images per forward pass.
        normalize: L2-normalise each output row.
        progress: show a progress bar (stderr) over batches.
    """

    def __init__(self, path: str | Path, *, arch: str | None = None, name: str, model_id: str = "",
                 device: str = "auto", dtype: DType = "auto", batch_size: int = 64, normalize: bool = True,
                 progress: bool = True) -> None:
        self.path = Path(path)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if self.path.is_dir():
            if not (self.path / LOCAL_DIR_CONFIG).is_file():
                raise ModelNotFoundError(
                    f"{self.path} is not an open_clip local-dir folder: it has no {LOCAL_DIR_CONFIG} (found "
                    f"{sorted(p.name for p in self.path.iterdir())[:10]}); pass the checkpoint file with an "
                    f"architecture (image_arch) instead, or add the config"
                )
            arch = None
        elif self.path.is_file():
            if not arch:
                raise ConfigError(f"image model {self.path} is a checkpoint file: name its open_clip architecture "
                                  f"(image_arch, e.g. \"ViT-B-32\")")
            if arch.startswith(("hf-hub:", "local-dir:")):
                raise ConfigError(f"image_arch {arch!r} must be a plain open_clip architecture name (e.g. ViT-B-32)")
        else:
            raise ModelNotFoundError(f"image model {self.path} does not exist")
        self.arch = arch
        self.name = name
        self.model_id = model_id
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.normalize = normalize
        self.progress = progress
        self.weights_sha256 = weight_digests(self.path)
        self._model: Any = None
        self._preprocess: Any = None

    @property
    def identity(self) -> dict[str, Any]:
        """Everything that determines the output vectors (recorded as the manifest's ``model`` field)."""
        config = (json.loads((self.path / LOCAL_DIR_CONFIG).read_text()) if self.path.is_dir() else None)
        return {"kind": "image", "name": self.name, "model_id": self.model_id, "path": str(self.path),
                "arch": self.arch, "config": config, "weights_sha256": self.weights_sha256, "dtype": self.dtype,
                "normalize": self.normalize}

    @property
    def key(self) -> str:
        """Hash of :attr:`identity` without the path."""
        return stable_hash({k: v for k, v in self.identity.items() if k != "path"}, 32)

    @property
    def dim(self) -> int:
        """Output dimension (loads the model)."""
        model, _ = self._load()
        return int(model.visual.output_dim)

    def _load(self) -> tuple[Any, Any]:
        if self._model is not None:
            return self._model, self._preprocess
        open_clip = _open_clip()
        try:
            if self.arch is None:
                model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{self.path}",
                                                                             device=self.device)
            else:
                if self.arch not in open_clip.list_models():
                    raise ConfigError(f"image_arch {self.arch!r} is not an open_clip architecture; known ones "
                                      f"include {open_clip.list_models()[:8]} (open_clip.list_models())")
                model, _, preprocess = open_clip.create_model_and_transforms(self.arch, pretrained=str(self.path),
                                                                             device=self.device)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"cannot load open_clip weights from {self.path} (arch {self.arch}): "
                                     f"{exc}") from exc
        model.eval()
        log.info("loaded image encoder %s from %s on %s (%s)", self.name, self.path, self.device, self.dtype)
        self._model, self._preprocess = model, preprocess
        return model, preprocess

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        """Embed PIL images -> float32 array (len(images), dim)."""
        import torch

        model, preprocess = self._load()
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.stack([preprocess(im) for im in images]).to(self.device)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                    enabled=self.dtype == "float16"):
            feats = model.encode_image(batch).float()
        if self.normalize:
            feats = torch.nn.functional.normalize(feats, dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def __getstate__(self) -> dict[str, Any]:
        """A pickled encoder (sent to a Ray actor) travels without its loaded model; it loads where it is used."""
        return {**self.__dict__, "_model": None, "_preprocess": None}

    def batches(self, paths: Sequence[Path]) -> list[list[int]]:
        """Row indices of each forward pass over `paths`: consecutive runs of `batch_size` files (every executor
        runs exactly these passes, so the vectors do not depend on where they were computed)."""
        return [list(range(i, min(i + self.batch_size, len(paths)))) for i in range(0, len(paths), self.batch_size)]

    def encode_file_batch(self, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass over the readable files of `paths` -> (vectors float32 (n, dim), ok bool (n,));
        unreadable files give zero rows."""
        vectors = np.zeros((len(paths), self.dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        images, rows = [], []
        for row, p in enumerate(paths):
            image = load_image(p)
            if image is not None:
                images.append(image)
                rows.append(row)
        if images:
            vectors[rows] = self.encode_images(images)
            ok[rows] = True
        return vectors, ok

    def encode_files(self, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        """Embed image files -> (vectors float32 (n, dim), ok bool (n,)); unreadable files give zero rows."""
        from tqdm.auto import tqdm

        vectors = np.zeros((len(paths), self.dim), dtype=np.float32)
        ok = np.zeros(len(paths), dtype=bool)
        groups = self.batches(paths)
        for rows in tqdm(groups, desc=f"images ({self.name})", unit="batch",
                         disable=not self.progress or len(groups) <= 1):
            vectors[rows], ok[rows] = self.encode_file_batch([paths[i] for i in rows])
        return vectors, ok


def load_image(path: Path) -> Any | None:
    """Decode `path` as an RGB PIL image; None when it is missing or not a decodable image (logged at debug)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        log.debug("unreadable image %s: %s", path, exc)
        return None


def save_random_clip(folder: str | Path, *, embed_dim: int = 64, image_size: int = 64, layers: int = 2,
                     width: int = 64, seed: int = 0) -> Path:
    """Write a randomly initialised open_clip CLIP as a ``local-dir:`` folder; returns the folder.

    Shape (defaults): ViT with 2 layers of width 64 (head width 32) over 16x16 patches of a 64x64 image, a 2-layer
    text tower of width 64 over open_clip's bundled BPE vocabulary, 64-d joint space: about 3.4 M parameters,
    13.7 MB as safetensors. The weights are noise: the model exercises the real open_clip code path only.
    """
    import torch
    from safetensors.torch import save_file

    open_clip = _open_clip()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": layers, "width": width, "head_width": 32,
                       "patch_size": 16},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": width, "heads": 2, "layers": layers},
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**model_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / LOCAL_DIR_CONFIG).write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}, indent=2))
    (folder / "README.md").write_text(
        f"# Random tiny CLIP (NOT a trained model)\n\nWritten by llmrec_local.embed.image.save_random_clip "
        f"(seed {seed}) for tests and benchmarks; its features are noise.\n")
    return folder
