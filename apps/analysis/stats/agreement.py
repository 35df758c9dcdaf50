"""Inter-reader agreement: weighted Cohen's kappa (``vcd::Kappa`` conventions) and percent agreement."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .descriptive import report_order

CATEGORIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Kappa:
    """A kappa value with its asymptotic standard error and Wald 95 % interval (``confint.Kappa``).

    The asymptotic variance is exactly 0 on degenerate data: one reader gave every image the same score (kappa
    is then 0 by construction) or the readers agreed on every image (kappa 1). vcd's interval is then (k, k),
    which claims a certainty the data do not have; here the interval is not estimable (NaN), the SE kept as is.
    """

    value: float
    se: float

    @property
    def estimable(self) -> bool:
        """Whether a Wald interval means anything: a finite kappa with a positive standard error."""
        return bool(np.isfinite(self.value) and np.isfinite(self.se) and self.se > 0)

    @property
    def ci(self) -> tuple[float, float]:
        if not self.estimable:
            return np.nan, np.nan
        half = stats.norm.ppf(0.975) * self.se
        return self.value - half, self.value + half


def confusion_table(a: np.ndarray, b: np.ndarray, categories: tuple[int, ...] = CATEGORIES) -> np.ndarray:
    """Cross-table of two raters over a fixed category set, so unused categories still count as columns."""
    index = {c: i for i, c in enumerate(categories)}
    try:
        ia = np.fromiter((index[v] for v in a), dtype=np.intp, count=len(a))
        ib = np.fromiter((index[v] for v in b), dtype=np.intp, count=len(b))
    except KeyError as exc:
        raise ValueError(f"rating {exc.args[0]!r} is not one of the categories {categories}") from None
    k = len(categories)
    return np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(float)


def kappa_weights(k: int, kind: str) -> np.ndarray:
    """Agreement weights: ``linear`` (vcd "Equal-Spacing") or ``quadratic`` (vcd "Fleiss-Cohen")."""
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    if kind == "linear":
        return 1.0 - distance
    if kind == "quadratic":
        return 1.0 - distance**2
    raise ValueError(f"unknown kappa weighting {kind!r}; use 'linear' or 'quadratic'")


def weighted_kappa(table: np.ndarray, weights: np.ndarray) -> Kappa:
    """Weighted kappa of a square table and the ASE of ``vcd::Kappa`` (Fleiss, Cohen & Everitt 1969)."""
    n = table.sum()
    if n == 0:
        return Kappa(np.nan, np.nan)
    p = table / n
    row = p.sum(axis=1)
    col = p.sum(axis=0)
    po = (weights * p).sum()
    pc = (weights * np.outer(row, col)).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        kw = (po - pc) / (1.0 - pc)
        w_row = weights @ col
        w_col = weights @ row
        dev = weights - (w_row[:, None] + w_col[None, :]) * (1.0 - kw)
        # The numerator is the variance of `dev` over the table (its mean is kw - pc (1 - kw)). It is 0 where
        # `dev` is constant on the occupied cells (a reader with one score, or perfect agreement); in floating
        # point it then comes out as a rounding residue (1e-15, an SE near 1e-7), which is set to 0 exactly.
        second = (p * dev**2).sum()
        spread = second - (kw - pc * (1.0 - kw)) ** 2
        if abs(spread) <= 1e-10 * second:
            spread = 0.0
        var = spread / (1.0 - pc) ** 2 / n
    return Kappa(float(kw), float(np.sqrt(var)) if var >= 0 else np.nan)


def percent_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of exactly equal ratings, in percent."""
    a = np.asarray(a)
    return float(100.0 * np.mean(a == np.asarray(b))) if a.size else np.nan


def reader_agreement(scores: pd.DataFrame, categories: tuple[int, ...] = CATEGORIES) -> pd.DataFrame:
    """Kappas and agreement per sequence x item x version x reader pair on the cases both readers scored.

    The first nine columns are those of ``ref_kappa.csv``; standard errors and 95 % intervals follow.
    """
    wide = scores.pivot_table(
        index=["sequence", "item", "version", "case_id"], columns="reader", values="score", aggfunc="first"
    )
    readers = sorted(wide.columns)
    weights = {kind: kappa_weights(len(categories), kind) for kind in ("linear", "quadratic")}
    grouped = dict(list(wide.groupby(level=["sequence", "item", "version"], sort=False)))
    rows = []
    for key in report_order(scores, ["sequence", "item", "version"]):
        block = grouped[key]
        for r1, r2 in combinations(readers, 2):
            pair = block[[r1, r2]].dropna()
            if pair.empty:
                continue
            a = pair[r1].to_numpy(dtype=int)
            b = pair[r2].to_numpy(dtype=int)
            table = confusion_table(a, b, categories)
            lin = weighted_kappa(table, weights["linear"])
            quad = weighted_kappa(table, weights["quadratic"])
            rows.append(
                (
                    *key,
                    r1,
                    r2,
                    len(pair),
                    lin.value,
                    quad.value,
                    percent_agreement(a, b),
                    lin.se,
                    *lin.ci,
                    quad.se,
                    *quad.ci,
                )
            )
    columns = [
        "sequence",
        "item",
        "version",
        "reader_1",
        "reader_2",
        "n",
        "kappa_linear",
        "kappa_quadratic",
        "percent_agreement",
        "kappa_linear_se",
        "kappa_linear_ci_low",
        "kappa_linear_ci_high",
        "kappa_quadratic_se",
        "kappa_quadratic_ci_low",
        "kappa_quadratic_ci_high",
    ]
    return pd.DataFrame(rows, columns=columns)
