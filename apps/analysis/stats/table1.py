"""Table 1: patient characteristics by site and the tests the paper names (R's defaults reproduced)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

CATEGORICAL = ("sex", "tumor_type", "who_grade")
# Shown and tested when the patient table has them (the study's patients export does; the R reference data do not).
OPTIONAL_CATEGORICAL = ("idh_status", "codeletion_1p19q")
# A value that says nothing about the patient: not entered, or entered as "unknown" (the IDH and 1p/19q choices).
MISSING = "NA"
_NOT_KNOWN = {"", "nan", "none", "na", "<na>", "unknown"}


def categorical_variables(patients: pd.DataFrame) -> list[str]:
    return [*CATEGORICAL, *(v for v in OPTIONAL_CATEGORICAL if v in patients.columns)]


def category_labels(column: pd.Series) -> pd.Series:
    """Levels as text, with every kind of missing value as ``MISSING`` and integral numbers without ".0"
    (a database column of grades with a gap arrives as 4.0, 3.0, NaN)."""

    def label(value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return MISSING
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        text = str(value).strip()
        return MISSING if text.lower() in _NOT_KNOWN else text

    return column.map(label).astype(str)


def table1_tests(patients: pd.DataFrame, group: str = "site") -> pd.DataFrame:
    """Shapiro-Wilk on age, Kruskal-Wallis of age by site, Pearson chi-square of each category by site.

    Matches ``shapiro.test``, ``kruskal.test`` (tie-corrected) and ``chisq.test`` without Yates'
    correction (R only applies it to 2 x 2 tables; ``correct=False`` is used for those too, so the
    statistic is always the plain Pearson one). Columns are those of ``ref_table1_tests.csv``.

    Missing values are left out, as R does: both age tests drop NA, and ``table(x, site)`` has no NA
    level. Every test always has its row, NaN where R gives no value (a small site or a pilot must not
    stop the report): ``shapiro.test`` needs 3 or more ages that are not all identical, ``kruskal.test``
    two sites and ages that differ, ``chisq.test`` two levels of the variable and two sites.
    """
    rows = []
    known = patients[patients["age"].notna()]
    age = known["age"].to_numpy(dtype=float)
    if age.size < 3 or np.ptp(age) == 0:
        rows.append(("age", "shapiro_wilk", np.nan, np.nan, np.nan))
    else:
        sw = stats.shapiro(age)
        rows.append(("age", "shapiro_wilk", float(sw.statistic), np.nan, float(sw.pvalue)))
    samples = [g.to_numpy(dtype=float) for _, g in known.groupby(group, sort=True)["age"]]
    if len(samples) < 2 or age.size == 0 or np.ptp(age) == 0:
        rows.append(("age", "kruskal_wallis", np.nan, np.nan, np.nan))
    else:
        kw = stats.kruskal(*samples)
        rows.append(("age", "kruskal_wallis", float(kw.statistic), len(samples) - 1, float(kw.pvalue)))
    for variable in categorical_variables(patients):
        levels = category_labels(patients[variable])
        present = levels != MISSING
        table = pd.crosstab(levels[present], patients.loc[present, group])
        if min(table.shape) < 2:
            rows.append((variable, "chi_square", np.nan, np.nan, np.nan))
            continue
        chi = stats.chi2_contingency(table.to_numpy(), correction=False)
        rows.append((variable, "chi_square", float(chi.statistic), int(chi.dof), float(chi.pvalue)))
    return pd.DataFrame(rows, columns=["variable", "test", "statistic", "df", "p"])


def table1_summary(patients: pd.DataFrame, group: str = "site") -> pd.DataFrame:
    """Descriptive Table 1 in long form: age mean/SD/median/IQR of the known ages and how many are missing,
    and category counts with % per site (missing values as the level ``NA``)."""
    rows = []
    variables = categorical_variables(patients)
    for site, block in [*patients.groupby(group, sort=True), ("all", patients)]:
        age = block["age"].astype(float)
        known = age.dropna()
        q1, median, q3 = np.percentile(known, [25, 50, 75]) if len(known) else (np.nan,) * 3
        n = len(block)
        rows.append((site, "n", "", n, np.nan))
        for stat, value in (
            ("mean", known.mean()),
            ("sd", known.std(ddof=1)),
            ("median", median),
            ("q1", q1),
            ("q3", q3),
        ):
            rows.append((site, "age", stat, float(value), np.nan))
        missing = int(age.isna().sum())
        rows.append((site, "age", "missing", missing, 100.0 * missing / n))
        for variable in variables:
            counts = category_labels(block[variable]).value_counts().sort_index()
            for level, count in counts.items():
                rows.append((site, variable, level, int(count), 100.0 * count / n))
    return pd.DataFrame(rows, columns=["site", "variable", "level", "value", "percent"])
