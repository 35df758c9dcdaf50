"""Table 3: mean score with a 95 % t-interval per sequence x item x version."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .validation import VERSIONS


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[int, float, float, float]:
    """Return (n, mean, ci_low, ci_high) with a Student t-interval, as R's ``t.test`` gives it."""
    values = np.asarray(values, dtype=float)
    n = values.size
    if n == 0:
        return 0, np.nan, np.nan, np.nan
    mean = float(values.mean())
    if n < 2:
        return n, mean, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2.0, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return n, mean, float(mean - half), float(mean + half)


def report_order(df: pd.DataFrame, keys: list[str]) -> list[tuple]:
    """Distinct key tuples ordered as the report lists them: each column by first appearance,
    versions as conventional before DL."""
    ranks = {}
    for key in keys:
        if key == "version":
            ranks[key] = {v: i for i, v in enumerate(VERSIONS)}
        else:
            ranks[key] = {v: i for i, v in enumerate(pd.unique(df[key]))}
    combos = df[keys].drop_duplicates().itertuples(index=False, name=None)
    return sorted(combos, key=lambda combo: tuple(ranks[k][v] for k, v in zip(keys, combo, strict=True)))


def score_means(scores: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Means per sequence x item x version (``ref_means.csv`` columns and row order)."""
    keys = ["sequence", "item", "version"]
    groups = dict(list(scores.groupby(keys, sort=False)["score"]))
    rows = []
    for combo in report_order(scores, keys):
        rows.append((*combo, *mean_ci(groups[combo].to_numpy(), level)))
    return pd.DataFrame(rows, columns=["sequence", "item", "version", "n", "mean", "ci_low", "ci_high"])
