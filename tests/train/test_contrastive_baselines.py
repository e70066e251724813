"""SGL and SimGCL in the harness: trained by the real trainer on the planted-preference data they beat popularity
(the known-answer test of docs/architecture.md "How to add a model", the papers' default contrastive settings); the
training config, recipes and the multi-seed runner select them."""

import json

import pytest

from llmrec_local.config import hash_dict
from llmrec_local.errors import ConfigError
from llmrec_local.evaluate.stage import evaluate
from llmrec_local.run import multiseed
from llmrec_local.run.config import parse_recipe
from llmrec_local.train import ModelConfig, TrainConfig, train


@pytest.mark.parametrize("name", ["sgl", "simgcl"])
def test_contrastive_baselines_beat_popularity(tmp_path, planted_arrays, pop_recall, name):
    """30 epochs, no early stop: SimGCL starts slowly here (its noisy-view InfoNCE at tau = 0.2 holds validation
    near popularity for the first ~8 epochs at lr 0.02, then it climbs to LightGCN's level), so patience must not
    end the run on that plateau."""
    config = TrainConfig(model=ModelConfig(name=name), epochs=30, batch_size=128, lr=0.02, patience=30,
                         progress=False)
    run = train(config, planted_arrays, tmp_path / "run")
    result = evaluate(run, planted_arrays)
    pop = pop_recall(planted_arrays)
    assert result["metrics"]["recall@20"] > pop + 0.3, (result["metrics"]["recall@20"], pop)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    part = "ssl" if name == "sgl" else "cl"
    assert all(row[part] > 0 for row in log)  # the contrastive term was on in every epoch


def test_model_config_selects_them_with_their_settings_and_checks_ranges():
    assert ModelConfig(name="sgl").model_kwargs() == {"dim": 64, "n_layers": 3, "reg_weight": 1e-4, "cl_weight": 0.1,
                                                      "cl_temp": 0.2, "edge_drop_rate": 0.1}
    assert ModelConfig(name="simgcl", noise_eps=0.2).model_kwargs() == {
        "dim": 64, "n_layers": 3, "reg_weight": 1e-4, "cl_weight": 0.1, "cl_temp": 0.2, "noise_eps": 0.2}
    assert "cl_weight" not in ModelConfig(name="lightgcn").model_kwargs()
    for bad in ({"edge_drop_rate": 1.0}, {"cl_temp": 0.0}, {"cl_weight": -0.1}, {"noise_eps": -1.0},
                {"name": "simgcl", "n_layers": 0}):
        with pytest.raises(ValueError):
            ModelConfig(**{"name": "sgl", **bad})
    # added settings at their defaults stay out of the hash: existing LightGCN runs keep their identity
    assert "cl_weight" not in json.dumps(hash_dict(TrainConfig(model=ModelConfig(name="lightgcn"))))
    assert "cl_weight" in json.dumps(hash_dict(TrainConfig(model=ModelConfig(name="sgl", cl_weight=0.5))))


def test_recipes_and_the_multiseed_runner_accept_them(tmp_path, monkeypatch):
    recipe = parse_recipe({"recipe": {"name": "cmp"}, "prepare": {"source": "x"},
                           "runs": {"sgl": {"model": {"name": "sgl", "edge_drop_rate": 0.2}},
                                    "simgcl": {"model": {"name": "simgcl"}}}})
    assert [(r.train.model.name, r.train.model.edge_drop_rate) for r in recipe.runs] == [("sgl", 0.2), ("simgcl", 0.1)]
    seen = {}
    monkeypatch.setattr(multiseed, "run_seeds", lambda configs, *a: seen.update(configs) or {})
    monkeypatch.setattr(multiseed, "summarize_runs", lambda runs, baseline: {"systems": {}})
    assert multiseed.main(["--data", str(tmp_path), "--out", str(tmp_path), "--models", "sgl", "simgcl",
                           "--baseline", "sgl", "model.cl_temp=0.5"]) == 0
    assert {k: (c.model.name, c.model.cl_temp) for k, c in seen.items()} == {"sgl": ("sgl", 0.5),
                                                                             "simgcl": ("simgcl", 0.5)}
    with pytest.raises(ConfigError, match="unknown system"):
        multiseed.main(["--data", str(tmp_path), "--out", str(tmp_path), "--models", "sgl-faithful"])
