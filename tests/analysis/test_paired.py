"""Paired tests and VGC (issue 14, item 5): R's wilcox.test conventions worked by hand, Holm across a family,
small and degenerate data, and Table 6 of the report. Parity with R on the public data: test_stats_parity.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from apps.analysis.report import ReportMeta, build_tables, render_html
from apps.analysis.stats import run_analysis
from apps.analysis.stats.paired import PAIRED_DETAIL_COLUMNS, holm, paired_table, signed_rank, vgc_auc
from apps.analysis.stats.validation import SCORE_COLUMNS


def r_normal_approximation(diff: list[float]) -> tuple[float, float]:
    """R's wilcox.test(exact = FALSE, correct = TRUE) written out from its source (stats/R/wilcox.test.R)."""
    x = np.array([d for d in diff if d != 0], dtype=float)
    n = x.size
    r = stats.rankdata(np.abs(x))
    v = r[x > 0].sum()
    z = v - n * (n + 1) / 4
    _, ties = np.unique(r, return_counts=True)
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - (ties**3 - ties).sum() / 48)
    z = (z - math.copysign(0.5, z) if z != 0 else 0.0) / sigma
    return float(v), float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))


@pytest.mark.parametrize(
    "diff",
    [
        [1, 2, -3, 0, 4],  # a zero, dropped before ranking
        [0.5, 0.5, -0.5, 1, 1, 1, -2, 0, 0, 1.5],  # ties and zeros
        [-1, -1, -1, -2],  # all negative: V = 0
        [3],  # one difference: z = 0 after the continuity correction
        [2, 2, 2],  # all tied
    ],
)
def test_signed_rank_follows_r(diff: list[float]) -> None:
    conventional = np.full(len(diff), 3.0)
    assert signed_rank(conventional + np.array(diff), conventional) == pytest.approx(r_normal_approximation(diff))


def test_signed_rank_by_hand() -> None:
    """Differences 1, 2, -3, 0, 4: the zero is dropped, V = 1 + 2 + 4 = 7 of n = 4, mean 5, variance 7.5,
    z = (7 - 5 - 0.5) / sqrt(7.5)."""
    v, p = signed_rank(np.array([4, 5, 0, 3, 7]), np.array([3, 3, 3, 3, 3]))
    assert v == 7
    assert p == pytest.approx(2 * stats.norm.sf(1.5 / math.sqrt(7.5)), abs=1e-12)


def test_all_differences_zero_gives_v_0_and_no_p() -> None:
    """R: V = 0 and p = NaN (0 / 0); no error, no warning turned into a crash."""
    v, p = signed_rank(np.array([3.0, 4.0]), np.array([3.0, 4.0]))
    assert v == 0 and math.isnan(p)


def test_vgc_auc_by_hand() -> None:
    # pairs (3,3) tie, (3,2) win, (4,3) win, (4,2) win: (3 + 0.5) / 4
    assert vgc_auc(np.array([3, 4]), np.array([3, 2])) == 0.875
    assert vgc_auc(np.array([1, 1]), np.array([5])) == 0.0
    assert math.isnan(vgc_auc(np.array([]), np.array([3])))


def test_holm_by_hand() -> None:
    # sorted .01 x 3 = .03, .03 x 2 = .06, .04 x 1 = .04 -> kept monotone at .06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    adjusted = holm([0.2, math.nan, 0.01])
    assert math.isnan(adjusted[1]) and adjusted.tolist()[::2] == pytest.approx([0.2, 0.02])


def _scores(items=("noise", "motion_artifact"), cases=8, dl_gain=1, readers=("R1", "R2"), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(cases):
        for reader in readers:
            for version in ("conventional", "dl"):
                for item in items:
                    base = int(rng.integers(1, 5))
                    score = min(base + (dl_gain if version == "dl" else 0), 5)
                    rows.append((f"C{k}", f"P{k}", "ABC"[k % 3], reader, "T2W", version, item, score))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def test_case_means_over_readers_are_compared() -> None:
    """Two readers' scores of a case are averaged per version before the signed-rank test."""
    scores = _scores(items=("noise",))
    table = paired_table(scores)
    means = scores.groupby(["case_id", "version"])["score"].mean().unstack()
    v, p = signed_rank(means["dl"].to_numpy(), means["conventional"].to_numpy())
    row = table.iloc[0]
    assert (row["n_cases"], row["wilcoxon_v"], row["wilcoxon_p"]) == (8, v, pytest.approx(p))
    assert row["median_diff"] == float(np.median(means["dl"] - means["conventional"]))


def test_holm_family_is_the_given_comparisons() -> None:
    scores = _scores(items=("noise", "motion_artifact", "overall_quality"), cases=20)
    everything = paired_table(scores)
    assert everything["in_family"].all() and (everything["family_size"] == 3).all()
    np.testing.assert_allclose(everything["wilcoxon_p_holm"], holm(everything["wilcoxon_p"]))
    planned = paired_table(scores, family=[("T2W", "noise"), ("T2W", "motion_artifact")]).set_index("item")
    assert planned.loc["overall_quality", "in_family"] == False  # noqa: E712 - numpy bool
    assert math.isnan(planned.loc["overall_quality", "wilcoxon_p_holm"])
    np.testing.assert_allclose(
        planned.loc[["noise", "motion_artifact"], "wilcoxon_p_holm"], holm(planned.loc[["noise", "motion_artifact"], "wilcoxon_p"])
    )
    assert (planned["family_size"] == 2).all()


def test_one_version_only_and_no_difference_give_rows_with_notes() -> None:
    scores = _scores(items=("noise", "motion_artifact"))
    scores = scores[~((scores["item"] == "noise") & (scores["version"] == "dl"))]
    scores.loc[scores["item"] == "motion_artifact", "score"] = 3
    table = paired_table(scores)
    assert list(table.columns) == PAIRED_DETAIL_COLUMNS
    table = table.set_index("item")
    assert table.loc["noise", "n_cases"] == 0 and math.isnan(table.loc["noise", "wilcoxon_p"])
    assert "both versions" in table.loc["noise", "note"]
    assert table.loc["motion_artifact", "wilcoxon_v"] == 0 and math.isnan(table.loc["motion_artifact", "wilcoxon_p"])
    assert table.loc["motion_artifact", "vgc_auc"] == 0.5
    assert (table["family_size"] == 0).all()


def test_report_table_6_after_the_five_tables_and_before_the_plan() -> None:
    result = run_analysis(_scores(cases=12, dl_gain=1))
    tables = build_tables(result, ReportMeta(title="t"))
    assert [t.caption.split(".")[0] for t in tables] == [f"Table {k}" for k in range(1, 9)]
    paired = tables[5]
    assert paired.key == "paired" and paired.columns[-2:] == ["P (Holm)", "VGC AUC"]
    assert [row.cells[1] for row in paired.rows] == ["Noise", "Motion artifact"]
    assert "Holm-adjusted across the 2 comparisons" in paired.footnote
    html = render_html(result, ReportMeta(title="t"))
    assert "Table 6. Paired comparison per case" in html and "Holm&#x27;s method across the 2 comparisons" in html
