import json

import numpy as np
import pytest
import torch

from llmrec_local.artifacts.evaluation import read_per_user
from llmrec_local.errors import ArtifactError, ConfigError
from llmrec_local.evaluate.stage import evaluate
from llmrec_local.train import ModelConfig, SideInputs, TrainConfig, TripleSampler, ablation_overrides, train


def cfg(name, variant="fixed", **kw):
    base = dict(epochs=15, batch_size=128, lr=0.02, patience=4, progress=False)
    base.update(kw)
    return TrainConfig(model=ModelConfig(name=name, variant=variant), **base)


@pytest.mark.parametrize("name,variant", [("mf", "fixed"), ("lightgcn", "fixed"), ("llmrec", "faithful"),
                                          ("llmrec", "fixed")])
def test_trained_models_beat_popularity(tmp_path, planted_arrays, pop_recall, name, variant):
    run = train(cfg(name, variant), planted_arrays, tmp_path / "run")
    result = evaluate(run, planted_arrays)
    pop = pop_recall(planted_arrays)
    assert result["n_users_evaluated"] == planted_arrays.n_users
    assert result["metrics"]["recall@20"] > pop + 0.1, (result["metrics"]["recall@20"], pop)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["best_epoch"] >= 1 and "recall@20" in manifest["val_metrics"]
    per_user = read_per_user(run)
    assert len(per_user["user"]) == planted_arrays.n_users


def test_same_seed_same_metrics_and_artifact_contents(tmp_path, planted_arrays):
    from safetensors.torch import load_file

    c = cfg("lightgcn", epochs=4)
    a = train(c, planted_arrays, tmp_path / "a")
    b = train(c, planted_arrays, tmp_path / "b")
    ea, eb = load_file(str(a / "embeddings.safetensors")), load_file(str(b / "embeddings.safetensors"))
    assert torch.equal(ea["user"], eb["user"]) and torch.equal(ea["item"], eb["item"])
    assert ea["user"].shape == (planted_arrays.n_users, 64)
    assert json.loads((a / "manifest.json").read_text())["val_metrics"] == \
        json.loads((b / "manifest.json").read_text())["val_metrics"]
    for f in ("model.safetensors", "config.json", "train_log.jsonl", "_COMPLETE"):
        assert (a / f).is_file()
    assert len((a / "train_log.jsonl").read_text().splitlines()) == 4
    # a different seed gives a different model
    c2 = train(cfg("lightgcn", epochs=4, seed=1), planted_arrays, tmp_path / "c")
    assert not torch.equal(ea["user"], load_file(str(c2 / "embeddings.safetensors"))["user"])


def test_rerun_skips_and_config_change_is_refused(tmp_path, planted_arrays):
    c = cfg("mf", epochs=2)
    run = train(c, planted_arrays, tmp_path / "r")
    stamp = (run / "_COMPLETE").read_text()
    assert train(c, planted_arrays, tmp_path / "r") == run and (run / "_COMPLETE").read_text() == stamp
    with pytest.raises(ArtifactError, match="config hash"):
        train(cfg("mf", epochs=3), planted_arrays, tmp_path / "r")


def test_resume_continues_from_the_checkpoint(tmp_path, planted_arrays, monkeypatch):
    from safetensors.torch import load_file

    import llmrec_local.train.stage as trainer

    c = cfg("llmrec", "fixed", epochs=5, patience=100)
    full = train(c, planted_arrays, tmp_path / "full")
    real = trainer._evaluate_split
    calls = {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_evaluate_split", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        train(c, planted_arrays, tmp_path / "resumed")
    assert not (tmp_path / "resumed").exists() and (tmp_path / ".resumed.partial" / "checkpoint.pt").is_file()
    monkeypatch.setattr(trainer, "_evaluate_split", real)
    resumed = train(c, planted_arrays, tmp_path / "resumed")
    e1, e2 = load_file(str(full / "embeddings.safetensors")), load_file(str(resumed / "embeddings.safetensors"))
    torch.testing.assert_close(e1["user"], e2["user"])
    assert len((resumed / "train_log.jsonl").read_text().splitlines()) == 5
    assert not (resumed / "checkpoint.pt").exists()


def test_llm_pairs_and_side_arrays_are_used(tmp_path, planted_arrays):
    rng = np.random.default_rng(0)
    U, I = planted_arrays.n_users, planted_arrays.n_items
    pairs = np.stack([np.arange(U), rng.integers(0, I, U), rng.integers(0, I, U)], 1)
    side = SideInputs(item_text=rng.standard_normal((I, 12)).astype(np.float32),
                      user_profiles=rng.standard_normal((U, 10)).astype(np.float32),
                      item_attributes={"director": rng.standard_normal((I, 8)).astype(np.float32)}, pairs=pairs)
    run = train(cfg("llmrec", "faithful", epochs=2), planted_arrays, tmp_path / "s", side=side)
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["side_inputs"]) == {"item_text", "user_profiles", "attr:director", "pairs"}
    assert manifest["counts"]["llm_pairs"] == U
    with pytest.raises(Exception, match="rows|shape"):
        train(cfg("llmrec", epochs=1), planted_arrays, tmp_path / "bad",
              side=SideInputs(item_text=np.zeros((I + 1, 4), dtype=np.float32)))


def test_sampler_is_vectorised_and_correct(make_planted):
    arrays = make_planted(1)
    aug = np.array([[0, 1, 2], [1, 3, 4], [2, 5, 999]])  # last row invalid (item out of range)
    s = TripleSampler(arrays.train, arrays.n_users, arrays.n_items, torch.Generator().manual_seed(0), aug)
    assert s.n_invalid_aug == 1
    train_set = {tuple(p) for p in arrays.train.tolist()}
    b = s.sample(100, aug_sample_rate=0.5, noise_rate=0.1)
    obs = slice(0, b.n_observed)
    assert b.n_observed == 100 and len(set(b.users[obs].tolist())) == 100
    assert all((u, p) in train_set for u, p in zip(b.users[obs].tolist(), b.pos[obs].tolist()))
    assert not any((u, n) in train_set for u, n in zip(b.users[obs].tolist(), b.neg[obs].tolist()))
    extra = len(b) - 100
    assert 10 <= extra <= 10 + 2  # 10 noise + at most 2 LLM triples (users 0 and 1 have valid pairs)
    assert s.steps_per_epoch(64) == len(arrays.train) // 64 + 1


def test_config_validation_and_ablations():
    from llmrec_local.config import apply_overrides, from_mapping

    with pytest.raises(ConfigError, match="valid keys"):
        from_mapping(TrainConfig, {"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="select_metric"):
        from_mapping(TrainConfig, {"select_metric": "auc"})
    c = from_mapping(TrainConfig, apply_overrides({}, ablation_overrides("w/o-u&i")))
    assert c.model.user_cat_rate == 0.0 and c.model.item_cat_rate == 0.0
    c = from_mapping(TrainConfig, apply_overrides({}, ablation_overrides("w/o-u-i")))
    assert c.aug_sample_rate == 0.0
    with pytest.raises(ConfigError):
        ablation_overrides("w/o-everything")


def test_cli_help_and_print_config(capsys):
    from llmrec_local.evaluate import __main__ as evaluate_cli
    from llmrec_local.train import __main__ as train_cli

    for mod in (train_cli, evaluate_cli):
        with pytest.raises(SystemExit) as exc:
            mod.main(["--help"])
        assert exc.value.code == 0
    assert train_cli.main(["--data", "x", "--out", "y", "--model", "llmrec", "--variant", "faithful",
                           "--ablation", "w/o-prune", "--print-config", "epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "prune_drop_rate = 0.0" in out and "epochs = 3" in out and 'variant = "faithful"' in out
