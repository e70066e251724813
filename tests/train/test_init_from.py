"""``model.init_from``: text vectors as the initial item/user tables of MF and LightGCN (a seeded fixed projection to
`dim`, scaled to the default init's std), rows without a text left at the random init."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec_local.config import from_mapping
from llmrec_local.data.arrays import InteractionArrays
from llmrec_local.errors import ConfigError
from llmrec_local.train import ModelConfig, TrainConfig, train
from llmrec_local.train.config import train_config_hash
from llmrec_local.train.init_from import INIT_STD, projected
from llmrec_local.train.side import SideArrays, SideInputs
from llmrec_local.train.stage import make_model


def _texts(n: int, dim: int = 48, missing: tuple[int, ...] = (), seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[list(missing)] = 0.0
    return x


def _side(item_text: np.ndarray | None = None, user_text: np.ndarray | None = None) -> SideArrays:
    return SideArrays(item_text, None, {}, user_text, None, {})


@pytest.mark.parametrize("name", ["mf", "lightgcn"])
def test_present_rows_start_from_their_text(name: str, planted_arrays: InteractionArrays) -> None:
    n_items, n_users = planted_arrays.n_items, planted_arrays.n_users
    items = _texts(n_items, missing=(0, 5))
    items[7] = items[3]  # two items with the same text start equal
    users = _texts(n_users, dim=32, missing=(1,), seed=1)
    config = TrainConfig(model=ModelConfig(name=name, dim=16, init_from=("item_text", "user_text")), seed=3)
    plain = make_model(TrainConfig(model=ModelConfig(name=name, dim=16), seed=3), planted_arrays, _side(),
                       torch.device("cpu"))
    model = make_model(config, planted_arrays, _side(items, users), torch.device("cpu"))
    again = make_model(config, planted_arrays, _side(items, users), torch.device("cpu"))
    torch.testing.assert_close(model.item, again.item, rtol=0, atol=0)  # deterministic
    # rows without a text keep exactly the random init of a run without init_from
    torch.testing.assert_close(model.item[[0, 5]], plain.item[[0, 5]], rtol=0, atol=0)
    torch.testing.assert_close(model.user[1], plain.user[1], rtol=0, atol=0)
    present = np.ones(n_items, bool)
    present[[0, 5]] = False
    item = model.item.detach().numpy()
    assert item[present].std() == pytest.approx(INIT_STD, rel=1e-4)
    np.testing.assert_array_equal(item[7], item[3])
    # the projection keeps text similarity: cosines of projected rows follow those of the texts
    cos = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (a / np.linalg.norm(a, axis=1, keepdims=True)).T  # noqa: E731
    text_cos, row_cos = cos(items[present][:40]), cos(item[present][:40])
    assert np.corrcoef(text_cos.ravel(), row_cos.ravel())[0, 1] > 0.3
    rows, mask = projected(items, 16, seed=123)
    assert mask.tolist() == present.tolist() and rows.shape == (n_items, 16)


def test_settings_hash_and_errors(planted_arrays: InteractionArrays) -> None:
    assert train_config_hash(TrainConfig()) == "dc833d86b7644bcf"  # unchanged while init_from is empty
    parsed = from_mapping(TrainConfig, {"model": {"name": "mf", "init_from": ["item_text"]}}, "train")
    assert parsed.model.init_from == ("item_text",)
    assert train_config_hash(parsed) != train_config_hash(TrainConfig(model=ModelConfig(name="mf")))
    with pytest.raises(ConfigError, match="LLMRec already takes the texts as features"):
        from_mapping(TrainConfig, {"model": {"name": "llmrec", "init_from": ["item_text"]}}, "train")
    with pytest.raises(ConfigError, match="is not one of"):
        from_mapping(TrainConfig, {"model": {"name": "mf", "init_from": ["item_image"]}}, "train")
    with pytest.raises(ConfigError, match=r"brings no item_text vectors; add it to the run's side inputs"):
        make_model(TrainConfig(model=ModelConfig(name="mf", init_from=("item_text",))), planted_arrays, _side(),
                   torch.device("cpu"))


def test_a_run_trains_from_text(planted_arrays: InteractionArrays, tmp_path: Path) -> None:
    config = TrainConfig(model=ModelConfig(name="mf", dim=8, init_from=("item_text",)), epochs=1, progress=False)
    run = train(config, planted_arrays, tmp_path / "run", side=SideInputs(item_text=_texts(planted_arrays.n_items)))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["side_inputs"]["item_text"]["shape"] == [planted_arrays.n_items, 48]
    assert manifest["epochs_run"] == 1
