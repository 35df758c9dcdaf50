"""Table 2: SNR1, SNR2 and CNR from ROI statistics, per sequence and version, with a paired comparison.

SNR = mean signal in the ROI / SD of the background; CNR = |S1 - S2| / SD of the background, as in
the paper's Methods. ROI statistics come from stored pixel values in the original intensity scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .descriptive import mean_ci

MEASURES = ("snr1", "snr2", "cnr")


def snr_cnr(s1_mean: float, s2_mean: float, background_sd: float) -> tuple[float, float, float]:
    """Return (SNR1, SNR2, CNR) for one image."""
    if background_sd <= 0:
        raise ValueError("background SD must be positive")
    return s1_mean / background_sd, s2_mean / background_sd, abs(s1_mean - s2_mean) / background_sd


def image_measures(rois: pd.DataFrame) -> pd.DataFrame:
    """One row per case x sequence x version with SNR1, SNR2 and CNR; images lacking an ROI are dropped."""
    wide = rois.pivot_table(
        index=["case_id", "sequence", "version"], columns="roi", values=["mean", "sd"], aggfunc="first"
    )
    needed = [("mean", "S1"), ("mean", "S2"), ("sd", "background")]
    wide = wide.reindex(columns=needed).dropna()
    background = wide[("sd", "background")]
    out = pd.DataFrame(
        {
            "snr1": wide[("mean", "S1")] / background,
            "snr2": wide[("mean", "S2")] / background,
            "cnr": (wide[("mean", "S1")] - wide[("mean", "S2")]).abs() / background,
        }
    )
    return out.reset_index()


def snr_table(rois: pd.DataFrame) -> pd.DataFrame:
    """Table 2: mean and 95 % CI per sequence x measure x version, and paired tests DL vs conventional.

    The paired t-test and the Wilcoxon signed-rank test use the cases measured in both versions.
    """
    measures = image_measures(rois)
    rows = []
    for sequence, block in measures.groupby("sequence", sort=False):
        paired = block.pivot(index="case_id", columns="version", values=list(MEASURES))
        for measure in MEASURES:
            summary = {}
            for version in ("conventional", "dl"):
                summary[version] = mean_ci(block.loc[block["version"] == version, measure].to_numpy())
            both = paired[measure].reindex(columns=["conventional", "dl"]).dropna()
            p_t = p_w = np.nan
            if len(both) >= 2:
                diff = both["dl"] - both["conventional"]
                if diff.std(ddof=1) > 0:
                    p_t = float(stats.ttest_rel(both["dl"], both["conventional"]).pvalue)
                if (diff != 0).any():
                    p_w = float(stats.wilcoxon(both["dl"], both["conventional"]).pvalue)
            rows.append((sequence, measure, *summary["conventional"], *summary["dl"], len(both), p_t, p_w))
    columns = [
        "sequence",
        "measure",
        "n_conventional",
        "mean_conventional",
        "ci_low_conventional",
        "ci_high_conventional",
        "n_dl",
        "mean_dl",
        "ci_low_dl",
        "ci_high_dl",
        "n_paired",
        "p_paired_t",
        "p_wilcoxon",
    ]
    return pd.DataFrame(rows, columns=columns)
