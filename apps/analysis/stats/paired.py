"""Paired comparison of DL and conventional per sequence x item: Wilcoxon signed-rank test and VGC area.

Reproduces R's ``stats::wilcox.test(dl, conventional, paired = TRUE, exact = FALSE, correct = TRUE)`` on each
case's mean score over its readers (the test 510(k) submissions for MR enhancement software have used), and the
area under the visual grading characteristic (VGC) curve over the individual scores:

- zero differences are dropped before ranking (R's and scipy's ``zero_method="wilcox"``), ties get mid-ranks;
- the p-value is the normal approximation with the tie correction of the variance and a continuity correction
  of 0.5 towards the mean (scipy's ``method="approx", correction=True``), two-sided;
- ``V`` is R's statistic, the sum of the ranks of the positive differences (scipy reports min(V+, V-) for a
  two-sided test, so V is summed here);
- the VGC area is ``P(DL score > conventional score) + 1/2 P(tie)`` over every pair of one DL and one
  conventional score, the Mann-Whitney U over the product of the group sizes.

P-values are Holm-adjusted across a family of comparisons (``multipletests(method="holm")``): the analysis plan's
primary sequences x items when a plan is given, otherwise every comparison in the table. Small data never raise:
a comparison without any case scored in both versions, or whose differences are all zero (R gives V = 0 and
p = NaN), comes back with NaN and a note.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

PAIRED_COLUMNS = ["sequence", "item", "n_cases", "median_diff", "wilcoxon_v", "wilcoxon_p", "vgc_auc"]
PAIRED_DETAIL_COLUMNS = [*PAIRED_COLUMNS, "wilcoxon_p_holm", "in_family", "family_size", "note"]


def signed_rank(dl: np.ndarray, conventional: np.ndarray) -> tuple[float, float]:
    """R's ``wilcox.test(dl, conventional, paired = TRUE, exact = FALSE, correct = TRUE)``: (V, two-sided p)."""
    diff = np.asarray(dl, dtype=float) - np.asarray(conventional, dtype=float)
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 0.0, math.nan
    ranks = stats.rankdata(np.abs(nonzero))
    v = float(ranks[nonzero > 0].sum())
    test = stats.wilcoxon(diff, zero_method="wilcox", correction=True, method="approx", alternative="two-sided")
    return v, float(test.pvalue)


def vgc_auc(dl: np.ndarray, conventional: np.ndarray) -> float:
    """Area under the VGC curve: P(DL > conventional) + 1/2 P(tie) over all pairs of scores."""
    if len(dl) == 0 or len(conventional) == 0:
        return math.nan
    u = stats.mannwhitneyu(dl, conventional, alternative="two-sided", use_continuity=False).statistic
    return float(u) / (len(dl) * len(conventional))


def holm(p_values: Iterable[float]) -> np.ndarray:
    """Holm-adjusted p-values; NaN stays NaN and is not counted in the family."""
    p = np.asarray(list(p_values), dtype=float)
    adjusted = np.full(p.shape, math.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted


def paired_comparison(block: pd.DataFrame) -> tuple[int, float, float, float, float, str]:
    """One sequence x item: (n_cases, median_diff, V, p, VGC area, note)."""
    case_means = block.groupby(["case_id", "version"])["score"].mean().unstack()
    both = (
        case_means[["conventional", "dl"]].dropna()
        if {"conventional", "dl"} <= set(case_means.columns)
        else case_means.iloc[0:0]
    )
    auc = vgc_auc(
        block.loc[block["version"] == "dl", "score"].to_numpy(),
        block.loc[block["version"] == "conventional", "score"].to_numpy(),
    )
    if both.empty:
        return 0, math.nan, math.nan, math.nan, auc, "no case scored in both versions"
    diff = (both["dl"] - both["conventional"]).to_numpy()
    v, p = signed_rank(both["dl"].to_numpy(), both["conventional"].to_numpy())
    note = "every case's difference is 0: no test" if math.isnan(p) else ""
    return len(both), float(np.median(diff)), v, p, auc, note


def paired_table(scores: pd.DataFrame, family: Iterable[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Per sequence x item: the columns of ``ref_paired.csv``, then the Holm-adjusted p-value across ``family``
    (pairs of sequence and item; None: every row), whether the row is in it, the family's size and a note."""
    rows = []
    for (sequence, item), block in scores.groupby(["sequence", "item"], sort=False):
        rows.append((sequence, item, *paired_comparison(block)))
    table = pd.DataFrame(rows, columns=[*PAIRED_COLUMNS[:-1], "vgc_auc", "note"])
    table = table[[*PAIRED_COLUMNS, "note"]]
    keys = list(zip(table["sequence"], table["item"], strict=True))
    in_family = [True] * len(keys) if family is None else [key in set(map(tuple, family)) for key in keys]
    table["in_family"] = in_family
    tested = table["in_family"] & table["wilcoxon_p"].notna()
    table["family_size"] = int(tested.sum())
    table["wilcoxon_p_holm"] = math.nan
    table.loc[tested, "wilcoxon_p_holm"] = holm(table.loc[tested, "wilcoxon_p"])
    return table[PAIRED_DETAIL_COLUMNS]
