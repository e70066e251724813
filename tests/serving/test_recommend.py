"""Top-K recommendations of a run without HTTP (`serving.recommend`), checked against `testkit.recommend.Reference`."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from testkit.fakes import rewrite_artifact_file
from testkit.recommend import Reference, TinyRun, genre_history

from llmrec_local.errors import ArtifactError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare
from serving.config import ServingLimits
from serving.recommend import RunRecommender, ServingInputError, UnknownIdError, top_k


def test_top_k_orders_by_score_then_index_and_drops_excluded() -> None:
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    rows = top_k(scores, 3)
    assert rows[0][0].tolist() == [1, 2, 4] and rows[0][1].tolist() == [3.0, 3.0, 2.0]
    assert rows[1][0].tolist() == [0, 1, 2]
    everything = top_k(scores, 5)
    assert everything[0][0].tolist() == [1, 2, 4, 0]  # the excluded item is not returned
    assert everything[1][0].tolist() == [0, 1, 2, 3, 4]


def test_recommender_logic_without_http(tiny_run: TinyRun, ref: Reference) -> None:
    rec = RunRecommender(tiny_run.run, tiny_run.dataset, ServingLimits(max_k=20))
    got = [r.item for r in rec.recommend(["u0005"], 7)[0]]
    assert got == ref.user_topk("u0005", 7)
    history = genre_history(ref, "Horror")
    assert [r.item for r in rec.recommend_fold_in(history, 9)] == ref.fold_in_topk(history, 9)
    np.testing.assert_allclose(rec.fold_in_vector(np.array([ref.item_index[i] for i in history])),
                               ref.item[[ref.item_index[i] for i in history]].mean(axis=0), rtol=1e-5)
    with pytest.raises(ServingInputError, match=r"k=21 .*max_k"):
        rec.recommend(["u0005"], 21)
    with pytest.raises(UnknownIdError, match="'zzz'") as info:
        rec.user_index("zzz")
    assert info.value.status == 404
    with pytest.raises(UnknownIdError, match="'i9999'") as info:
        rec.recommend_fold_in(["i0001", "i9999"])
    assert info.value.status == 422


def test_refuses_a_dataset_the_run_was_not_trained_on(tiny_run: TinyRun, tmp_path: Path) -> None:
    other = prepare(PrepareConfig(source=tiny_run.raw, seed=1), tmp_path / "other")
    with pytest.raises(ArtifactError, match="trained on dataset config"):
        RunRecommender(tiny_run.run, other)


def test_refuses_embeddings_of_the_wrong_shape(tiny_run: TinyRun, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    run = tmp_path / "run"
    shutil.copytree(tiny_run.run, run)
    # republished as a (wrong) train stage would have written it, so that the shape check is what fails
    rewrite_artifact_file(run, "embeddings.safetensors", lambda f: save_file(
        {"user": np.zeros((60, 4), np.float32), "item": np.zeros((79, 4), np.float32)}, str(f)))
    with pytest.raises(ArtifactError, match="79 items"):
        RunRecommender(run)


def test_refuses_a_run_file_replaced_after_training(tiny_run: TinyRun, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    run = tmp_path / "run"
    shutil.copytree(tiny_run.run, run)
    save_file({"user": np.zeros((60, 4), np.float32), "item": np.zeros((79, 4), np.float32)},
              str(run / "embeddings.safetensors"))
    with pytest.raises(ArtifactError, match=r"embeddings.safetensors has \d+ bytes but its stage wrote \d+"):
        RunRecommender(run)


def test_model_metadata_reports_evaluation_metrics_when_present(tiny_run: TinyRun, tmp_path: Path) -> None:
    from llmrec_local.evaluate.stage import evaluate

    run = tmp_path / "run"
    shutil.copytree(tiny_run.run, run)
    result = evaluate(run, tiny_run.dataset)
    described = RunRecommender(run).describe()
    assert described["eval_metrics"]["split"] == "test"
    assert described["eval_metrics"]["recall@20"] == pytest.approx(result["metrics"]["recall@20"])
