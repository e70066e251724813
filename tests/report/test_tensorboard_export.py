"""``llmrec report export``: a real (tiny) trained and evaluated run, exported and read back with TensorBoard's own
EventAccumulator; the values equal what the run and evaluation artifacts hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrec_local.artifacts.evaluation import eval_dir, read_metrics
from llmrec_local.artifacts.run import read_train_log
from llmrec_local.evaluate.stage import evaluate
from llmrec_local.report.__main__ import main
from llmrec_local.train import ModelConfig, TrainConfig, train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util.tensor_util import make_ndarray  # noqa: E402

EPOCHS = 3


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Path:
    """A workdir holding one MF run (3 epochs, validation every epoch), evaluated on test."""
    root = tmp_path_factory.mktemp("tb_work")
    run = train(TrainConfig(model=ModelConfig(name="mf", dim=8), epochs=EPOCHS, batch_size=64, progress=False),
                dataset_path, root / "runs" / "mf-seed0")
    evaluate(run, dataset_path, split="test")
    return root


def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of every scalar in the event files of `folder`."""
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: {e.step: float(make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}
            for tag in acc.Tags()["tensors"]}


def test_export_writes_loss_validation_and_test_scalars(workdir: Path, tmp_path: Path) -> None:
    tb = tmp_path / "tb"
    assert main(["export", "--workdir", str(workdir), "--tensorboard", str(tb)]) == 0
    run = workdir / "runs" / "mf-seed0"
    scalars = _scalars(tb / "runs" / "mf-seed0")
    log = read_train_log(run)
    assert scalars["train/loss"] == pytest.approx({r["epoch"]: r["loss"] for r in log})
    assert sorted(scalars["val/recall@20"]) == list(range(1, EPOCHS + 1))
    assert scalars["val/recall@20"] == pytest.approx({r["epoch"]: r["val"]["recall@20"] for r in log})
    test = read_metrics(eval_dir(run, "test", "standard"))["metrics"]
    assert {tag[len("test/"):]: next(iter(v.values())) for tag, v in scalars.items() if tag.startswith("test/")} \
        == pytest.approx({k: v for k, v in test.items() if isinstance(v, float)})
    assert "time/train_s" in scalars

    # A second export replaces the run's events (one file, same points), never appends a second copy.
    assert main(["export", "--workdir", str(workdir), "--tensorboard", str(tb)]) == 0
    assert len(list((tb / "runs" / "mf-seed0").iterdir())) == 1
    assert _scalars(tb / "runs" / "mf-seed0")["train/loss"] == scalars["train/loss"]


def test_dry_run_lists_the_runs_and_writes_nothing(workdir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tb = tmp_path / "tb"
    assert main(["export", "--workdir", str(workdir), "--tensorboard", str(tb), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# would write events of runs/mf-seed0 (" in out and f"{tb / 'runs' / 'mf-seed0'} (new)" in out
    assert "dry run: nothing was written" in out
    assert not tb.exists()


def test_no_runs_is_a_clear_error(tmp_path: Path) -> None:
    from llmrec_local.errors import DataError

    with pytest.raises(DataError, match="no finished training run"):
        main(["export", "--workdir", str(tmp_path), "--tensorboard", str(tmp_path / "tb")])
