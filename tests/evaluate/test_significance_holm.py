"""Holm-Bonferroni adjustment of a family of p-values (hand-computed step-down with the monotonicity clamp)."""

from __future__ import annotations

import pytest

from llmrec_local.evaluate.significance import holm


def test_step_down_multipliers_and_input_order() -> None:
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> clamped up to 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_monotonicity_clamp_and_cap_at_one() -> None:
    # sorted: 0.02 x3 = 0.06, 0.025 x2 = 0.05 -> 0.06 (never below a smaller raw p's value), 0.6 x1 = 0.6
    assert holm([0.6, 0.02, 0.025]) == pytest.approx([0.6, 0.06, 0.06])
    assert holm([0.4, 0.5]) == pytest.approx([0.8, 0.8])  # 0.4 x2 = 0.8, 0.5 x1 = 0.5 -> 0.8
    assert holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])  # 0.7 x2 capped at 1


def test_undefined_tests_are_not_in_the_family() -> None:
    # m = 2 (the None and the NaN are undefined tests): 0.01 x2 = 0.02, 0.03 x1 = 0.03
    assert holm([None, 0.03, float("nan"), 0.01]) == [None, pytest.approx(0.03), None, pytest.approx(0.02)]
    assert holm([]) == [] and holm([0.2]) == [0.2]


def test_ties_get_the_same_adjusted_value() -> None:
    assert holm([0.01, 0.01, 0.2]) == pytest.approx([0.03, 0.03, 0.2])
