"""Smoke model builder: labelled, idempotent, deterministic, loadable offline with a ChatML template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrec_local.hashing import file_sha256
from llmrec_local.llm.smoke import SMOKE_MARKER, build_smoke_model, main


def test_smoke_model_is_labelled_and_complete(smoke_model: Path) -> None:
    config = json.loads((smoke_model / "config.json").read_text())
    assert config[SMOKE_MARKER] is True
    assert config["head_dim"] == 32 and config["num_hidden_layers"] == 2
    assert "NOT a language model" in (smoke_model / "README.md").read_text()
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (smoke_model / name).is_file()


def test_build_is_idempotent_and_deterministic(smoke_model: Path, tmp_path: Path) -> None:
    before = (smoke_model / "model.safetensors").stat().st_mtime_ns
    assert build_smoke_model(smoke_model) == smoke_model
    assert (smoke_model / "model.safetensors").stat().st_mtime_ns == before  # kept, not rebuilt
    assert main([str(tmp_path / "again")]) == 0
    for name in ("model.safetensors", "tokenizer.json"):
        assert file_sha256(tmp_path / "again" / name) == file_sha256(smoke_model / name)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a smoke model"):
        build_smoke_model(tmp_path / "busy")


def test_tokenizer_and_chat_template_load_offline(smoke_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smoke_model, local_files_only=True)
    text = tok.apply_chat_template([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                                   tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n"
    sample = '{"director":"Agnès Varda","country":"France"}'
    assert tok.decode(tok(sample)["input_ids"]) == sample  # every byte spellable, lossless round trip
