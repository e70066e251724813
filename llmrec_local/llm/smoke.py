"""Deterministic tiny "smoke" LLM for tests and the quickstart: a random 2-layer Qwen2 with a locally trained
byte-level BPE tokenizer and a ChatML chat template. Nothing is downloaded.

The model has random weights, so its answers are meaningless; it exists to run the *real* vLLM, OpenAI-server and
transformers code paths end to end (constrained decoding makes its output schema-valid anyway). Its config carries
``"llmrec_local_smoke_model": true`` and the folder has a README.md saying so, so it is never mistaken for a model.

Shape choices (each one is needed by a backend):

* hidden 64, 2 heads, 1 KV head -> head_dim 32, one of the head sizes vLLM's CPU attention supports;
* ``vocab_size`` = len(tokenizer) rounded up to a multiple of 64, larger than the tokenizer as in real Qwen2, so the
  constrained-decoding code must handle "model vocab > tokenizer vocab";
* the BPE uses Qwen2's own pre-tokenizer (regex split + byte level + NFC) because transformers loads a
  ``model_type: qwen2`` tokenizer as ``Qwen2Tokenizer`` and re-installs those components; with any other
  pre-tokenizer the ids would differ between loaders;
* ``initial_alphabet = ByteLevel.alphabet()`` makes every byte spellable, which the JSON grammar needs;
* two EOS ids (``<|im_end|>``, ``<|endoftext|>``), as in Qwen2-Instruct.

This module holds the recipe and labels the folder; the tokenizer and the model are built and saved by
`llmrec_local.llm.hf_backend`, the one module that imports transformers and tokenizers.

CLI: ``python -m llmrec_local.llm.smoke OUT_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import hf_backend

SMOKE_MARKER = "llmrec_local_smoke_model"
#: bump when the recipe changes, so an existing folder built by an older recipe is rebuilt
SMOKE_VERSION = 1

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# transformers' Qwen2 PRETOKENIZE_REGEX
QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
               r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
CHAT_TEMPLATE = ("{% for message in messages %}"
                 "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

_README = """# llmrec_local smoke model (NOT a language model)

Random weights: a 2-layer Qwen2 (hidden 64, head_dim 32) with a byte-level BPE tokenizer trained on a few thousand
synthetic lines and a ChatML chat template. Built by `python -m llmrec_local.llm.smoke OUT` (recipe version {version},
seed {seed}). It is used by tests, the throughput benchmark and the quickstart to run the real vLLM, OpenAI-server and
transformers code paths offline. Its answers are noise; with constrained decoding they are schema-valid noise.
`config.json` carries `"{marker}": true`.
"""

_WORDS = ("movie user item director country language genre age gender liked disliked positive negative "
          "candidate index title year comedy drama action thriller USA France English French Spanish "
          "male female unknown the a of and to in is for with").split()


def _corpus(n: int, seed: int) -> Iterator[str]:
    """Synthetic training text: words of the augmentation domain plus small JSON objects (a seeded stream)."""
    rnd = random.Random(seed)
    for _ in range(n):
        yield " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(3, 15)))
        yield '{"liked": %d, "disliked": %d, "director": "%s"}' % (
            rnd.randint(0, 40), rnd.randint(0, 40), rnd.choice(_WORDS))


def is_smoke_model(folder: str | Path) -> bool:
    """True when `folder` holds a complete smoke model built by the current recipe version."""
    cfg = Path(folder) / "config.json"
    if not (cfg.is_file() and (Path(folder) / "model.safetensors").is_file()
            and (Path(folder) / "tokenizer.json").is_file()):
        return False
    try:
        data = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return data.get(SMOKE_MARKER) is True and data.get("llmrec_local_smoke_version") == SMOKE_VERSION


def build_smoke_model(out_dir: str | Path, *, seed: int = 0, hidden: int = 64, layers: int = 2,
                      heads: int = 2, kv_heads: int = 1) -> Path:
    """Build the smoke model into `out_dir` (idempotent: an existing complete smoke model is kept as is).

    The folder is written to a sibling temp dir and renamed into place, so an interrupted build never leaves a
    half-written model behind. Deterministic for a given seed (same tokenizer.json and weights).

    Returns:
        the model folder (config.json, generation_config.json, model.safetensors, tokenizer.json,
        tokenizer_config.json, chat_template.jinja, README.md).
    """
    out = Path(out_dir).expanduser().resolve()
    if is_smoke_model(out):
        return out
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a smoke model folder; choose an empty or new directory")

    tokenizer = hf_backend.train_byte_level_bpe(
        _corpus(3000, seed), vocab_size=1024, special_tokens=SPECIALS, split_regex=QWEN2_SPLIT,
        eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE, model_max_length=4096)
    # larger than the tokenizer, as in real Qwen2 (see the module docstring)
    vocab_size = -(-len(tokenizer) // 64) * 64
    model = hf_backend.random_qwen2(tokenizer, vocab_size=vocab_size, hidden=hidden, layers=layers, heads=heads,
                                    kv_heads=kv_heads, max_positions=4096, seed=seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model folder is meant to be shared (e.g. by a server user)
    try:
        hf_backend.save_model_folder(model, tokenizer, tmp)
        cpath = tmp / "config.json"
        cdata = json.loads(cpath.read_text())
        cdata[SMOKE_MARKER] = True
        cdata["llmrec_local_smoke_version"] = SMOKE_VERSION
        cpath.write_text(json.dumps(cdata, indent=2, sort_keys=True))
        (tmp / "README.md").write_text(_README.format(version=SMOKE_VERSION, seed=seed, marker=SMOKE_MARKER))
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmrec_local.llm.smoke",
                                     description="Build the deterministic tiny random smoke LLM (offline).")
    parser.add_argument("out", help="output folder (kept if it already holds the smoke model)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    args = parser.parse_args(argv)
    try:
        path = build_smoke_model(args.out, seed=args.seed)
    except FileExistsError as exc:
        from ..errors import ConfigError

        raise ConfigError(str(exc)) from exc
    print(path)
    return 0


if __name__ == "__main__":
    from ..cli import run_main

    run_main(main)
