"""The trainer's two CPU switches: the malloc setting (llmrec_local.train.heap: freed memory is reused, not faulted in
anew) and flushed denormals (llmrec_local.train.denormals: on every ATen thread), and the train stage honouring both."""

from __future__ import annotations

import resource

import pytest
import torch

from llmrec_local.train import denormals, heap
from llmrec_local.train.denormals import flushed_denormals
from llmrec_local.train.heap import retained_heap

needs_glibc = pytest.mark.skipif(heap._glibc() is None, reason="the switches exist in glibc's malloc only")
needs_gomp = pytest.mark.skipif(denormals._libgomp() is None, reason="ATen's threads are reached through libgomp")


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


def _denormal_products() -> int:
    """How many of 4M products of a denormal (1e-39) by 0.5 come out nonzero: all of them with denormals kept, none
    when every thread flushes (the product is large enough for ATen to split it over its threads)."""
    return int((torch.full((1 << 22,), 1e-39) * 0.5).count_nonzero())


def _cpu_can_flush() -> bool:
    can = torch.set_flush_denormal(True)
    torch.set_flush_denormal(False)
    return can


@needs_gomp
@pytest.mark.skipif(not _cpu_can_flush(), reason="this CPU has no flush-to-zero mode")
def test_flushed_denormals_reach_every_thread_and_are_restored() -> None:
    assert _denormal_products() == 1 << 22
    with flushed_denormals() as outer:
        assert outer and _denormal_products() == 0
        with flushed_denormals() as inner:
            assert inner and denormals._depth == 2
        assert _denormal_products() == 0 and denormals._depth == 1  # the outer training still flushes
    assert _denormal_products() == 1 << 22 and denormals._depth == 0
    with flushed_denormals(enabled=False) as flushing:
        assert not flushing and _denormal_products() == 1 << 22


@pytest.mark.parametrize(("field", "on", "off", "switch"), [("heap", "retained", "default", "retained_heap"),
                                                            ("denormals", "flush", "keep", "flushed_denormals")])
@pytest.mark.parametrize("enabled", [True, False])
def test_the_train_stage_trains_with_the_switches_its_settings_name(tmp_path, planted_arrays, monkeypatch, field, on,
                                                                    off, switch, enabled) -> None:
    """``train.heap`` and ``train.denormals`` decide whether the CPU training loop runs inside their context; the run
    hash does not depend on them (runtime settings)."""
    from llmrec_local.train import ModelConfig, TrainConfig, stage, train_config_hash

    seen: list[bool] = []
    real = getattr(stage, switch)

    def recording(enabled: bool = True):  # type: ignore[no-untyped-def]
        seen.append(enabled)
        return real(enabled)

    monkeypatch.setattr(stage, switch, recording)
    base = {"model": ModelConfig(name="mf"), "epochs": 2, "batch_size": 128, "min_epochs": 0, "progress": False}
    config = TrainConfig(**base, **{field: on if enabled else off})
    stage.train(config, planted_arrays, tmp_path / "run")
    assert seen == [enabled]
    assert train_config_hash(config) == train_config_hash(TrainConfig(**base))
