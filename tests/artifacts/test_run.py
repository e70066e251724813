"""The run kind: RunStaging (resume files, log) and the readers of a published run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from llmrec_local.artifacts.base import ArtifactWriter
from llmrec_local.artifacts.run import (
    STAGE,
    RunStaging,
    embeddings_path,
    load_run_embeddings,
    read_run_embeddings,
    read_train_log,
)
from llmrec_local.errors import ArtifactError


def test_staging_resume_and_publish(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cpu = torch.device("cpu")
    with ArtifactWriter(out, stage=STAGE, config_hash="h", resume=True) as w:
        files = RunStaging(w.dir)
        assert files.load_checkpoint(cpu) is None and files.load_best(cpu) is None
        files.restart_log(0)
        for epoch in (1, 2):
            files.append_log({"epoch": epoch, "loss": 1.0 / epoch})
        files.save_checkpoint({"state": {"epoch": 1}})
        files.restart_log(1)  # a resume after epoch 1 drops the later line
        files.save_best({"w": torch.ones(2)})
        assert files.load_checkpoint(cpu)["state"] == {"epoch": 1}
        assert torch.equal(files.load_best(cpu)["w"], torch.ones(2))
        files.finish(w.manifest, torch.zeros(3, 2), torch.ones(4, 2), {"w": torch.ones(2)}, {"lr": 0.1})
    assert sorted(p.name for p in out.iterdir()) == ["_COMPLETE", "config.json", "embeddings.safetensors",
                                                     "manifest.json", "model.safetensors", "train_log.jsonl"]
    assert read_train_log(out) == [{"epoch": 1, "loss": 1.0}]
    user, item = read_run_embeddings(out)
    assert user.shape == (3, 2) and item.dtype == np.float32
    _, ti = load_run_embeddings(out)
    assert torch.equal(ti, torch.ones(4, 2))


def test_missing_and_foreign_files_are_named(tmp_path: Path) -> None:
    assert read_train_log(tmp_path) == []
    with pytest.raises(ArtifactError, match="has no embeddings.safetensors"):
        read_run_embeddings(tmp_path)
    save_file({"user": np.zeros((2, 2), dtype=np.float32)}, str(embeddings_path(tmp_path)))
    with pytest.raises(ArtifactError, match=r"lacks the 'user'/'item' tensors \(has \['user'\]\)"):
        read_run_embeddings(tmp_path)
    embeddings_path(tmp_path).write_bytes(b"not safetensors")
    with pytest.raises(ArtifactError, match="cannot read"):
        read_run_embeddings(tmp_path)
    with ArtifactWriter(tmp_path / "eval", stage="evaluate", config_hash="h"):
        pass
    with pytest.raises(ArtifactError, match="expected a 'train' artifact"):
        load_run_embeddings(tmp_path / "eval")
