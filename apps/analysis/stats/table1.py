"""Table 1: patient characteristics by site and the tests the paper names (R's defaults reproduced)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CATEGORICAL = ("sex", "tumor_type", "who_grade")


def table1_tests(patients: pd.DataFrame, group: str = "site") -> pd.DataFrame:
    """Shapiro-Wilk on age, Kruskal-Wallis of age by site, Pearson chi-square of each category by site.

    Matches ``shapiro.test``, ``kruskal.test`` (tie-corrected) and ``chisq.test`` without Yates'
    correction (R only applies it to 2 x 2 tables; ``correct=False`` is used for those too, so the
    statistic is always the plain Pearson one). Columns are those of ``ref_table1_tests.csv``.

    Every test always has its row, NaN where R gives no value (a small site or a pilot must not stop
    the report): ``shapiro.test`` needs 3 or more ages that are not all identical, ``kruskal.test``
    two sites and ages that differ, ``chisq.test`` two levels of the variable and two sites.
    """
    rows = []
    age = patients["age"].to_numpy(dtype=float)
    if age.size < 3 or np.ptp(age) == 0:
        rows.append(("age", "shapiro_wilk", np.nan, np.nan, np.nan))
    else:
        sw = stats.shapiro(age)
        rows.append(("age", "shapiro_wilk", float(sw.statistic), np.nan, float(sw.pvalue)))
    samples = [g.to_numpy(dtype=float) for _, g in patients.groupby(group, sort=True)["age"]]
    if len(samples) < 2 or np.ptp(age) == 0:
        rows.append(("age", "kruskal_wallis", np.nan, np.nan, np.nan))
    else:
        kw = stats.kruskal(*samples)
        rows.append(("age", "kruskal_wallis", float(kw.statistic), len(samples) - 1, float(kw.pvalue)))
    for variable in CATEGORICAL:
        table = pd.crosstab(patients[variable].astype(str), patients[group])
        if min(table.shape) < 2:
            rows.append((variable, "chi_square", np.nan, np.nan, np.nan))
            continue
        chi = stats.chi2_contingency(table.to_numpy(), correction=False)
        rows.append((variable, "chi_square", float(chi.statistic), int(chi.dof), float(chi.pvalue)))
    return pd.DataFrame(rows, columns=["variable", "test", "statistic", "df", "p"])


def table1_summary(patients: pd.DataFrame, group: str = "site") -> pd.DataFrame:
    """Descriptive Table 1 in long form: age mean/SD/median/IQR and category counts with % per site."""
    rows = []
    for site, block in [*patients.groupby(group, sort=True), ("all", patients)]:
        age = block["age"].astype(float)
        q1, median, q3 = np.percentile(age, [25, 50, 75])
        n = len(block)
        rows.append((site, "n", "", n, np.nan))
        for stat, value in (
            ("mean", age.mean()),
            ("sd", age.std(ddof=1)),
            ("median", median),
            ("q1", q1),
            ("q3", q3),
        ):
            rows.append((site, "age", stat, float(value), np.nan))
        for variable in CATEGORICAL:
            counts = block[variable].astype(str).value_counts().sort_index()
            for level, count in counts.items():
                rows.append((site, variable, level, int(count), 100.0 * count / n))
    return pd.DataFrame(rows, columns=["site", "variable", "level", "value", "percent"])
