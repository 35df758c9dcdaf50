"""The primary analysis of a locked analysis plan: the planned test on the planned comparisons, nothing else.

A plan names primary sequences and items, the test (the CLMM's version term, or the Wilcoxon signed-rank test on
case means), the hypothesis (superiority, or non-inferiority with a margin), alpha and the multiplicity correction
(Holm across the planned comparisons, or none). Everything else in the report is exploratory.

- CLMM, superiority: the two-sided Wald p of the version term (as in Table 3 and 4).
- CLMM, non-inferiority with margin delta (log odds ratio): H0 beta <= -delta, one-sided Wald
  ``p = 1 - Phi((beta + delta) / SE)``.
- Wilcoxon, superiority: the two-sided test of ``paired.py`` (R's ``wilcox.test(paired = TRUE, exact = FALSE)``).
- Wilcoxon, non-inferiority with margin delta (score points of the case-mean difference): H0 the differences are
  centred at or below -delta, R's ``wilcox.test(dl, conventional, paired = TRUE, mu = -delta,
  alternative = "greater", exact = FALSE, correct = TRUE)``, i.e. the signed-rank test of ``d + delta``.

A superiority comparison rejects in either direction (a significant negative effect reads "DL inferior"); a
non-inferiority comparison rejects only upwards.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

from .paired import holm

TESTS = ("clmm", "wilcoxon")
HYPOTHESES = ("superiority", "non_inferiority")
MULTIPLICITY = ("holm", "none")
PRIMARY_COLUMNS = [
    "sequence",
    "item",
    "test",
    "hypothesis",
    "estimate",
    "se",
    "p",
    "p_adjusted",
    "alpha",
    "decision",
]


@dataclass(frozen=True)
class PlanSpec:
    """What a locked plan fixes, as plain values (the database row lives in ``apps.analysis.models``)."""

    sequences: tuple[str, ...]
    items: tuple[str, ...]
    test: str
    hypothesis: str
    alpha: float
    multiplicity: str
    margin: float | None = None
    session_effect: bool = False  # the CLMMs take the reading session as a fixed effect (order effect)

    def __post_init__(self) -> None:
        if self.test not in TESTS or self.hypothesis not in HYPOTHESES or self.multiplicity not in MULTIPLICITY:
            raise ValueError(f"unknown plan choice: {self.test}, {self.hypothesis}, {self.multiplicity}")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha lies between 0 and 1")
        if (self.hypothesis == "non_inferiority") != (self.margin is not None and self.margin > 0):
            raise ValueError("a non-inferiority plan needs a margin > 0, a superiority plan none")
        if self.session_effect and self.test != "clmm":
            raise ValueError("the session effect is a term of the CLMM: a Wilcoxon plan cannot name it")

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        """The primary (sequence, item) pairs, sequences first, in the plan's order."""
        return [(sequence, item) for sequence in self.sequences for item in self.items]

    def covers(self, sequence: str, item: str, test: str) -> bool:
        return test == self.test and sequence in self.sequences and item in self.items


@dataclass(frozen=True)
class LockedPlan:
    """A frozen plan as the report shows it: what it fixes, when it was locked, and the JSON that was hashed."""

    spec: PlanSpec
    frozen_at: datetime
    sha256: str
    canonical: str

    @property
    def verified(self) -> bool:
        """The stored JSON still hashes to the stored sha256."""
        return hashlib.sha256(self.canonical.encode("utf-8")).hexdigest() == self.sha256


def _case_differences(block: pd.DataFrame) -> np.ndarray:
    means = block.groupby(["case_id", "version"])["score"].mean().unstack()
    if not {"conventional", "dl"} <= set(means.columns):
        return np.array([])
    both = means[["conventional", "dl"]].dropna()
    return (both["dl"] - both["conventional"]).to_numpy()


def _wilcoxon(diff: np.ndarray, hypothesis: str, margin: float | None) -> tuple[float, float, int]:
    """(p, direction of the shifted differences' rank sum (+1, -1, 0), n) for the planned hypothesis."""
    shifted = diff + (margin or 0.0) if hypothesis == "non_inferiority" else diff
    nonzero = shifted[shifted != 0]
    if nonzero.size == 0:
        return math.nan, 0, int(diff.size)
    ranks = stats.rankdata(np.abs(nonzero))
    direction = int(np.sign(ranks[nonzero > 0].sum() - nonzero.size * (nonzero.size + 1) / 4))
    alternative = "greater" if hypothesis == "non_inferiority" else "two-sided"
    p = stats.wilcoxon(shifted, zero_method="wilcox", correction=True, method="approx", alternative=alternative)
    return float(p.pvalue), direction, int(diff.size)


def _decision(p_adjusted: float, alpha: float, direction: int, hypothesis: str) -> str:
    if math.isnan(p_adjusted):
        return "not tested"
    if p_adjusted >= alpha:
        return "non-inferiority not shown" if hypothesis == "non_inferiority" else "no difference shown"
    if hypothesis == "non_inferiority":
        return "DL non-inferior"
    return "DL superior" if direction > 0 else "DL inferior"


def primary_analysis(scores: pd.DataFrame, clmm: pd.DataFrame, spec: PlanSpec) -> pd.DataFrame:
    """One row per planned comparison in ``PRIMARY_COLUMNS``: the estimate (beta of the CLMM, or the median of the
    case-mean differences), its SE (CLMM only), the planned p, the adjusted p and the decision at alpha."""
    fits = clmm.set_index(["sequence", "item"]) if not clmm.empty else clmm
    rows = []
    for sequence, item in spec.comparisons:
        if spec.test == "clmm":
            fit = fits.loc[(sequence, item)] if (sequence, item) in fits.index else None
            beta = math.nan if fit is None else float(fit["coef_version_dl"])
            se = math.nan if fit is None else float(fit["se"])
            if spec.hypothesis == "non_inferiority":
                p = float(stats.norm.sf((beta + spec.margin) / se)) if se > 0 else math.nan
            else:
                p = math.nan if fit is None else float(fit["p"])
            rows.append([sequence, item, beta, se, p, int(np.sign(beta)) if not math.isnan(beta) else 0])
        else:
            block = scores[(scores["sequence"] == sequence) & (scores["item"] == item)]
            diff = _case_differences(block)
            p, direction, _ = _wilcoxon(diff, spec.hypothesis, spec.margin)
            median = float(np.median(diff)) if diff.size else math.nan
            rows.append([sequence, item, median, math.nan, p, direction])
    table = pd.DataFrame(rows, columns=["sequence", "item", "estimate", "se", "p", "direction"])
    table["p_adjusted"] = holm(table["p"]) if spec.multiplicity == "holm" else table["p"]
    table["test"], table["hypothesis"], table["alpha"] = spec.test, spec.hypothesis, spec.alpha
    table["decision"] = [
        _decision(p_adj, spec.alpha, direction, spec.hypothesis)
        for p_adj, direction in zip(table["p_adjusted"], table["direction"], strict=True)
    ]
    return table[PRIMARY_COLUMNS]
