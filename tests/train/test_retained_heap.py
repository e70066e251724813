"""The trainer's malloc setting on the CPU (llmrec_local.train.heap): freed memory is reused, not faulted in anew."""

from __future__ import annotations

import resource

import pytest
import torch

from llmrec_local.train import heap
from llmrec_local.train.heap import retained_heap

needs_glibc = pytest.mark.skipif(heap._glibc() is None, reason="the switches exist in glibc's malloc only")


def _step_like_faults(iterations: int = 6) -> list[int]:
    """Minor page faults of each iteration of a step-like pattern: a few large temporaries (24-48 MiB, above glibc's
    largest mmap threshold) written, used and freed."""
    out = []
    for _ in range(iterations):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        temporaries = [torch.ones(mib * 2**20 // 4) for mib in (40, 24, 48)]
        product = temporaries[0][: 2**20] * 2
        del temporaries, product
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return out


@needs_glibc
def test_a_retained_heap_reuses_the_pages_that_steps_free() -> None:
    default = _step_like_faults()
    with retained_heap() as held:
        retained = _step_like_faults()
    assert held
    # The defaults map and unmap every such block: each iteration faults its ~112 MiB (28,000 pages) in again.
    assert min(default[2:]) > 10_000, default
    # Retained, later iterations reuse the first one's pages (glibc's aligned allocations still move now and then).
    assert sum(retained[2:]) < 0.5 * sum(default[2:]), (retained, default)


@needs_glibc
def test_nested_contexts_restore_the_defaults_when_the_last_one_ends() -> None:
    with retained_heap() as outer:
        with retained_heap() as inner:
            assert outer and inner and heap._depth == 2
        assert heap._depth == 1  # the outer training still runs with the retained heap
    assert heap._depth == 0


def test_disabled_it_changes_nothing() -> None:
    with retained_heap(enabled=False) as held:
        assert not held and heap._depth == 0


@pytest.mark.parametrize("setting", ["retained", "default"])
def test_the_train_stage_trains_in_the_heap_its_setting_names(tmp_path, planted_arrays, monkeypatch, setting) -> None:
    """``train.heap`` decides whether the CPU training loop runs inside retained_heap; results do not depend on it
    (a runtime setting: the run hash is the same)."""
    from llmrec_local.train import ModelConfig, TrainConfig, stage, train_config_hash

    seen: list[bool] = []

    def recording(enabled: bool = True):  # type: ignore[no-untyped-def]
        seen.append(enabled)
        return retained_heap(enabled)

    monkeypatch.setattr(stage, "retained_heap", recording)
    config = TrainConfig(model=ModelConfig(name="mf"), epochs=2, batch_size=128, min_epochs=0, progress=False,
                         heap=setting)
    stage.train(config, planted_arrays, tmp_path / "run")
    assert seen == [setting == "retained"]
    assert train_config_hash(config) == train_config_hash(TrainConfig(model=ModelConfig(name="mf"), epochs=2,
                                                                      batch_size=128, min_epochs=0, progress=False))
