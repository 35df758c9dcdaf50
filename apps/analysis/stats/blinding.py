"""Blinding integrity: how often readers guessed which image was DL-enhanced, and Bang's blinding index.

Bang, Ni & Davis (Control Clin Trials 2004; 25: 143-156) define, for the images of one true version ("arm"), with
``n`` answers of which ``c`` guessed right, ``w`` guessed wrong and the rest answered "don't know"::

    BI = (2 c / (c + w) - 1) * (c + w) / n = (c - w) / n,   Var(BI) = (p_c + p_w - (p_c - p_w)^2) / n

(p_c = c / n, p_w = w / n: the multinomial variance of p_c - p_w), with a Wald 95 % interval. BI = 0: guesses no
better than chance; 1: every answer right (blinding broken); -1: every answer wrong; "don't know" pulls it to 0.

In single mode each image is one version, so the index is given per arm (DL-enhanced images, conventional images);
in paired mode the reader names the panel they think is DL, and there is one arm. Skipped questions are counted
but left out of the index.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

OUTCOMES = ("correct", "incorrect", "dont_know", "skipped")
BLINDING_COLUMNS = [
    "reader",
    "arm",
    "n_asked",
    "n_answered",
    "n_correct",
    "n_incorrect",
    "n_dont_know",
    "percent_correct",
    "bang_bi",
    "bang_se",
    "bang_ci_low",
    "bang_ci_high",
]
OVERALL = "all readers"


def bang_index(correct: int, incorrect: int, dont_know: int, level: float = 0.95) -> tuple[float, float, float, float]:
    """(BI, SE, CI low, CI high) of one arm; NaN without answers. The interval is clipped to [-1, 1]."""
    n = correct + incorrect + dont_know
    if n == 0:
        return (math.nan,) * 4
    p_c, p_w = correct / n, incorrect / n
    bi = p_c - p_w
    se = math.sqrt(max(p_c + p_w - bi**2, 0.0) / n)
    z = stats.norm.ppf(0.5 + level / 2)
    return bi, se, max(bi - z * se, -1.0), min(bi + z * se, 1.0)


def _row(reader: str, arm: str, block: pd.DataFrame) -> list:
    counts = block["outcome"].value_counts()
    c, w, d = (int(counts.get(k, 0)) for k in ("correct", "incorrect", "dont_know"))
    guessed = c + w
    return [
        reader,
        arm,
        len(block),
        c + w + d,
        c,
        w,
        d,
        100.0 * c / guessed if guessed else math.nan,
        *bang_index(c, w, d),
    ]


def blinding_table(guesses: pd.DataFrame) -> pd.DataFrame:
    """Per reader and arm, then all readers per arm: counts, % right of the guesses and Bang's BI with 95 % CI.

    ``guesses`` has one row per question asked: ``reader``, ``arm`` (the true version in single mode, ``paired``
    in paired mode) and ``outcome`` (one of ``OUTCOMES``).
    """
    unknown = set(guesses["outcome"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown blinding outcome(s): {', '.join(sorted(map(str, unknown)))}")
    arms = [a for a in ("dl", "conventional", "paired") if a in set(guesses["arm"])]
    rows = []
    for reader in sorted(guesses["reader"].unique()):
        for arm in arms:
            block = guesses[(guesses["reader"] == reader) & (guesses["arm"] == arm)]
            if len(block):
                rows.append(_row(reader, arm, block))
    for arm in arms:
        rows.append(_row(OVERALL, arm, guesses[guesses["arm"] == arm]))
    table = pd.DataFrame(rows, columns=BLINDING_COLUMNS)
    return table.astype({c: np.int64 for c in BLINDING_COLUMNS[2:7]})
