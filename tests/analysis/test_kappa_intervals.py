"""Kappa intervals where the data give none, and numbers that round to zero.

The zero-width intervals of the agreement table came from degenerate data, not from a bootstrap: the asymptotic
variance of weighted kappa (Fleiss, Cohen & Everitt 1969, as in vcd::Kappa) is exactly 0 when one reader gave
every image the same score (kappa is then 0 by construction) and when the readers agreed on every image (kappa 1).
A Wald interval of width 0 would claim certainty the data do not have: it is "not estimable".
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from apps.analysis.report import fmt_ci, fmt_num, kappa_cell
from apps.analysis.stats.agreement import confusion_table, kappa_weights, weighted_kappa


def kappa(a: list[int], b: list[int], kind: str = "linear"):
    return weighted_kappa(confusion_table(np.array(a), np.array(b)), kappa_weights(5, kind))


@pytest.mark.parametrize("kind", ["linear", "quadratic"])
def test_one_reader_with_a_single_score_has_kappa_0_and_no_interval(kind: str) -> None:
    k = kappa([4, 4, 4, 4, 4], [3, 4, 5, 2, 4], kind)
    assert k.value == pytest.approx(0.0, abs=1e-12)
    assert k.se == 0.0
    assert not k.estimable
    assert all(math.isnan(x) for x in k.ci)


@pytest.mark.parametrize("kind", ["linear", "quadratic"])
def test_perfect_agreement_has_kappa_1_and_no_interval(kind: str) -> None:
    k = kappa([4, 3, 4, 5, 2], [4, 3, 4, 5, 2], kind)
    assert k.value == pytest.approx(1.0)
    assert k.se == 0.0
    assert not k.estimable
    assert all(math.isnan(x) for x in k.ci)


def test_ordinary_data_keep_their_wald_interval() -> None:
    k = kappa([4, 3, 2, 5, 1, 2], [3, 3, 4, 5, 2, 1])
    low, high = k.ci
    assert k.estimable and low < k.value < high


@pytest.mark.parametrize("value", [-0.0, -1e-17, -0.004])
def test_negative_zero_is_written_as_zero(value: float) -> None:
    assert fmt_num(value) == "0.00"
    assert fmt_ci(value, -0.004, 0.003) == "0.00 (0.00, 0.00)"


def test_kappa_cell_says_not_estimable() -> None:
    assert kappa_cell(-1e-17, math.nan, math.nan) == "0.00 (not estimable)"
    assert kappa_cell(math.nan, math.nan, math.nan) == "not estimable"
    assert kappa_cell(0.41, 0.2, 0.62) == "0.41 (0.20, 0.62)"
