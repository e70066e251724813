"""Model registry: alias and path resolution, folder checks, hash verification, and the errors users see."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmrec_local.errors import ConfigError, ModelNotFoundError
from llmrec_local.hashing import file_sha256
from llmrec_local.llm.registry import check_model_folder, load_registry, resolve_model


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """~/models and $LLMREC_MODELS_DIR must not leak the developer's real models into these tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLMREC_MODELS_DIR", raising=False)
    monkeypatch.delenv("LLMREC_MODEL_REGISTRY", raising=False)


def fake_llm(folder: Path, *, tokenizer: bool = True, weights: bool = True) -> Path:
    """A folder with the files the registry checks (contents irrelevant to resolution)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    if weights:
        (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_registry_has_the_documented_aliases() -> None:
    reg = load_registry()
    for alias in ("qwen2-7b", "qwen2.5-7b", "llama-3.1-8b", "mistral-7b", "smoke"):
        assert reg[alias].kind == "llm" and reg[alias].folder and reg[alias].chat_template
    assert reg["qwen2-7b"].source == "Qwen/Qwen2-7B-Instruct"
    assert reg["all-minilm-l6-v2"].kind == "text_embedder"
    assert reg["all-minilm-l6-v2"].sha256["model.safetensors"].startswith("53aa5117")
    assert any(e.kind == "image_encoder" for e in reg.values())


def test_registry_rejects_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text('[models.x]\nkind = "llm"\nfolder = "X"\nfodler = "typo"\n')
    with pytest.raises(ConfigError, match="fodler"):
        load_registry(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_registry(tmp_path / "missing.toml")


def test_explicit_path_resolves_and_forces_offline(smoke_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    resolved = resolve_model(str(smoke_model))
    assert resolved.path == smoke_model and resolved.kind == "llm"
    # the folder name matches the smoke alias's expected folder, so its settings apply
    assert resolved.alias == "smoke" and resolved.settings["max_model_len"] == 4096
    assert resolved.model_id.startswith("smoke@") and len(resolved.model_id) > len("smoke@")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_alias_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arg_dir, env_dir, home = tmp_path / "arg", tmp_path / "env", tmp_path / "home" / "models"
    fake_llm(env_dir / "Qwen2-7B-Instruct")
    fake_llm(home / "Qwen2-7B-Instruct")
    monkeypatch.setenv("LLMREC_MODELS_DIR", str(env_dir))
    assert resolve_model("qwen2-7b", models_dir=arg_dir).path == (env_dir / "Qwen2-7B-Instruct").resolve()
    fake_llm(arg_dir / "Qwen2-7B-Instruct")
    r = resolve_model("qwen2-7b", models_dir=arg_dir)
    assert r.path == (arg_dir / "Qwen2-7B-Instruct").resolve() and r.settings["dtype"] == "bfloat16"
    monkeypatch.delenv("LLMREC_MODELS_DIR")
    assert resolve_model("qwen2-7b").path == (home / "Qwen2-7B-Instruct").resolve()
    # the hub id of a registered model names the same local folder (no download involved)
    assert resolve_model("Qwen/Qwen2-7B-Instruct").alias == "qwen2-7b"


def test_missing_model_lists_every_place_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_MODELS_DIR", str(tmp_path / "env"))
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("mistral-7b", models_dir=tmp_path / "arg")
    msg = str(info.value)
    for place in (tmp_path / "arg" / "Mistral-7B-Instruct-v0.3", tmp_path / "env" / "Mistral-7B-Instruct-v0.3",
                  tmp_path / "home" / "models" / "Mistral-7B-Instruct-v0.3"):
        assert str(place) in msg
    assert "hf download mistralai/Mistral-7B-Instruct-v0.3 --local-dir" in msg


def test_hub_id_that_is_not_local_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="hub id.*never downloads"):
        resolve_model("someorg/some-model-7b", models_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve_model("Qwen/Qwen2-7B-Instruct", models_dir=tmp_path)


def test_missing_tokenizer_and_weights_are_named(tmp_path: Path) -> None:
    no_tok = fake_llm(tmp_path / "no_tok", tokenizer=False)
    with pytest.raises(ModelNotFoundError, match="no tokenizer file"):
        resolve_model(str(no_tok))
    no_w = fake_llm(tmp_path / "no_w", weights=False)
    with pytest.raises(ModelNotFoundError, match="no weights"):
        resolve_model(str(no_w))
    sharded = fake_llm(tmp_path / "sharded")
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert check_model_folder(sharded, "llm") == ["missing shard model-00002-of-00002.safetensors"]
    # registered alias whose folder is incomplete: the reason is in the list of places
    fake_llm(tmp_path / "md" / "Meta-Llama-3.1-8B-Instruct", tokenizer=False)
    with pytest.raises(ModelNotFoundError, match="Meta-Llama-3.1-8B-Instruct.*no tokenizer file"):
        resolve_model("llama-3.1-8b", models_dir=tmp_path / "md")


def test_verify_hashes(tmp_path: Path) -> None:
    folder = fake_llm(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match="no digests are known"):
        resolve_model(str(folder), verify_hashes=True)
    digest = file_sha256(folder / "model.safetensors")
    (folder / "SHA256SUMS").write_text(f"{digest}  model.safetensors\n")
    assert resolve_model(str(folder), verify_hashes=True).path == folder.resolve()
    (folder / "model.safetensors").write_bytes(b"corrupted")
    with pytest.raises(ModelNotFoundError, match="sha256"):
        resolve_model(str(folder), verify_hashes=True)


def test_other_kinds(tmp_path: Path) -> None:
    st = tmp_path / "all-MiniLM-L6-v2"
    st.mkdir()
    (st / "modules.json").write_text("[]")
    with pytest.raises(ModelNotFoundError, match="no weights"):
        resolve_model("all-minilm-l6-v2", kind="text_embedder", models_dir=tmp_path)
    (st / "model.safetensors").write_bytes(b"w")
    r = resolve_model("all-minilm-l6-v2", kind="text_embedder", models_dir=tmp_path)
    assert r.kind == "text_embedder" and r.settings["dim"] == 384
    ckpt = tmp_path / "clip.pt"
    ckpt.write_bytes(b"w")
    assert resolve_model(str(ckpt), kind="image_encoder").path == ckpt.resolve()
    with pytest.raises(ConfigError, match="is a llm"):
        resolve_model("qwen2-7b", kind="text_embedder", models_dir=tmp_path)
    with pytest.raises(ConfigError, match="kind"):
        resolve_model("qwen2-7b", kind="audio")  # type: ignore[arg-type]
