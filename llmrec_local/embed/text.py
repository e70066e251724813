"""Text encoder over local sentence-transformers folders (the only module that imports ``sentence_transformers``).

A :class:`TextEncoder` maps ``n`` strings to an ``(n, dim)`` float32 array. Each row is the model's sentence
embedding (for the default MiniLM: mean of the last hidden states over non-padding tokens, then L2-normalised);
with ``normalize=True`` rows are additionally scaled to unit L2 norm, ``v / max(||v||_2, eps)``, so dot products
are cosine similarities, the role ada-002's unit vectors played in LLMRec.

The model is loaded lazily on the first :meth:`TextEncoder.encode` call: the stage can build a model's identity
(weights hash, settings) and serve every row from its content cache without importing sentence-transformers.

Device and precision: ``device="auto"`` picks CUDA when available, else the CPU; ``dtype="auto"`` runs float16 on
CUDA (half the memory and bandwidth of float32) and float32 elsewhere (half precision on a CPU is slow). Outputs are
always returned as float32; the dtype is part of the model identity, so float16 and float32 vectors never share
cache entries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError, ModelNotFoundError
from ..hashing import file_sha256, stable_hash

log = logging.getLogger(__name__)

DType = Literal["auto", "float32", "float16"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_file_hash_memo: dict[tuple[str, int, int], str] = {}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is visible, else ``cpu``; explicit names are checked for existence."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was requested but torch sees no CUDA device; use device = \"cpu\" "
                          f"or \"auto\"")
    return device


def resolve_dtype(dtype: DType, device: str) -> Literal["float32", "float16"]:
    """``auto`` -> float16 on CUDA, float32 elsewhere; float16 on a CPU is refused (slow and lossy there)."""
    if dtype == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if dtype == "float16" and not device.startswith("cuda"):
        raise ConfigError(f"dtype float16 needs a CUDA device, got device {device!r}; use dtype = \"auto\" or "
                          f"\"float32\"")
    return dtype


def weight_digests(path: Path) -> dict[str, str]:
    """``{relative file name: sha256}`` of every weight file under `path` (a folder or a single checkpoint file).

    Recorded in embedding manifests and part of the row-cache key: replacing the weights (even by a same-sized
    file) changes it. File digests are memoised per process by (path, size, mtime).
    """
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()
                                                   and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise ModelNotFoundError(f"{path} holds no weight file ({', '.join(_WEIGHT_SUFFIXES)}); copy the complete "
                                 f"model folder")
    digests = {}
    for f in files:
        st = f.stat()
        memo_key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
        if memo_key not in _file_hash_memo:
            _file_hash_memo[memo_key] = file_sha256(f)
        digests[f.relative_to(path).as_posix() if path.is_dir() else f.name] = _file_hash_memo[memo_key]
    return digests


class TextEncoder:
    """Sentence-transformers model from a local folder.

    Args:
        path: sentence-transformers folder (``modules.json`` ...) or a plain transformers folder (mean pooling).
        name: alias or folder name recorded in manifests.
        model_id: upstream identity, e.g. ``sentence-transformers/all-MiniLM-L6-v2`` (informational).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1`` ...
        dtype: ``auto`` (float16 on CUDA), ``float32`` or ``float16``.
        batch_size: texts per forward pass.
        max_seq_length: truncate inputs to this many tokens (None: the model folder's own setting).
        normalize: L2-normalise each output row.
        progress: show sentence-transformers' progress bar (stderr) for batches of more than one chunk.
    """

    def __init__(self, path: str | Path, *, name: str, model_id: str = "", device: str = "auto",
                 dtype: DType = "auto", batch_size: int = 64, max_seq_length: int | None = None,
                 normalize: bool = True, progress: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ModelNotFoundError(f"text encoder folder {self.path} does not exist")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if max_seq_length is not None and max_seq_length < 1:
            raise ConfigError(f"max_seq_length must be >= 1, got {max_seq_length}")
        self.name = name
        self.model_id = model_id
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.normalize = normalize
        self.progress = progress
        self.weights_sha256 = weight_digests(self.path)
        self._model: Any = None

    @property
    def identity(self) -> dict[str, Any]:
        """Everything that determines the output vectors (recorded as the manifest's ``model`` field)."""
        return {"kind": "text", "name": self.name, "model_id": self.model_id, "path": str(self.path),
                "weights_sha256": self.weights_sha256, "dtype": self.dtype,
                "max_seq_length": self.max_seq_length, "normalize": self.normalize}

    @property
    def key(self) -> str:
        """Hash of :attr:`identity` without the path: moving the folder keeps cached vectors valid."""
        return stable_hash({k: v for k, v in self.identity.items() if k != "path"}, 32)

    @property
    def dim(self) -> int:
        """Output dimension (loads the model)."""
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot load a sentence-transformers model from {self.path}: {exc}") from exc
        if self.max_seq_length is not None:
            limit = _position_limit(model)
            if limit is not None and self.max_seq_length > limit:
                raise ConfigError(f"max_seq_length {self.max_seq_length} exceeds the {limit} positions of "
                                  f"{self.path}; use at most {limit}")
            model.max_seq_length = self.max_seq_length
        if self.dtype == "float16":
            model.half()
        model.eval()
        log.info("loaded text encoder %s from %s on %s (%s, max_seq_length %s)", self.name, self.path,
                 self.device, self.dtype, model.max_seq_length)
        self._model = model
        return model

    def __getstate__(self) -> dict[str, Any]:
        """A pickled encoder (sent to a Ray actor) travels without its loaded model; it loads where it is used."""
        return {**self.__dict__, "_model": None}

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Row indices of each forward pass over `texts`: longest first, `batch_size` rows each.

        The sort is global over all of `texts` (the stage passes every uncached row of a source at once), so each
        pass pads to the longest of similar-length neighbours instead of to the longest of a random draw; `encode`
        puts the vectors back in input order. A vector's float32 bits depend on the padded length of its pass, so
        every executor must run exactly these passes. The order is sentence-transformers' own (``argsort`` of minus
        the character length), so the vectors are also those of one ``SentenceTransformer.encode`` call over all
        texts, and the Ray driver batches without a tokenizer; an exact token-count sort would pad less
        (docs/usage.md, Embedding throughput) at the cost of a tokenization pass before batching."""
        order = np.argsort([-len(t) for t in texts]).tolist()
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        """The model's input features of one pass, on the CPU: ``input_ids``, ``attention_mask`` (and
        ``token_type_ids`` for BERT-like models), each int64 (len(texts), L) with L the longest text's token count
        (at most the max_seq_length), shorter rows padded."""
        return self._load().preprocess(list(texts))

    def forward(self, features: dict[str, Any]) -> Any:
        """One forward pass over tokenized `features` -> torch float32 tensor (n, dim) on the encoder's device.

        Runs in the encoder's dtype; the rows are cast to float32 before the optional L2 normalisation (done here
        again even when the model ends in its own Normalize module, which under float16 normalises in float16).
        On CUDA the call returns once the kernels are queued: the caller tokenizes the next pass while the device
        works (see `encode`)."""
        import torch

        model = self._load()
        on_device = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        with torch.inference_mode():
            vectors = model(on_device)["sentence_embedding"].float()
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """One forward pass: `texts` (at most `batch_size`) -> float32 array (len(texts), dim)."""
        return self.forward(self.tokenize(texts)).cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` -> float32 array (len(texts), dim), row i for texts[i].

        The passes are `batches` (sorted by length over all of `texts`); pass k+1 is tokenized on the CPU while
        the device still runs pass k (on a CPU device the two simply alternate), and each pass gives the same
        bits as `encode_batch` of its texts."""
        from tqdm.auto import tqdm

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        groups = self.batches(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        features = self.tokenize([texts[i] for i in groups[0]])
        for k, rows in enumerate(tqdm(groups, desc=f"text ({self.name})", unit="batch",
                                      disable=not self.progress or len(groups) <= 1)):
            queued = self.forward(features)
            if k + 1 < len(groups):
                features = self.tokenize([texts[i] for i in groups[k + 1]])
            vectors[rows] = queued.cpu().numpy()
        return vectors


def _position_limit(model: Any) -> int | None:
    """Maximum number of positions of the model's transformer, when it exposes one (BERT-like configs do)."""
    first = model[0] if len(model) else None
    config = getattr(getattr(first, "auto_model", None), "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) else None
