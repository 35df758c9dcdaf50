"""Table 2: SNR and CNR from ROI statistics, per sequence and version, with a paired comparison.

The paper's measures divide by the SD of the background (air): SNR1 or SNR2 = mean signal in S1 or S2 / SD of the
background, CNR = |S1 - S2| / SD of the background. A denoiser that flattens the air drives that SD towards 0 and
these ratios towards infinity: they reward suppressed background noise, not cleaner tissue. So next to them come
measures whose noise is the SD inside the tissue ROIs themselves: SNR1 or SNR2 (tissue) = mean / SD of the same
ROI, CNR (tissue) = |S1 - S2| / SD pooled over S1 and S2. Tissue texture adds to that SD, so they understate SNR
a little, equally for both versions.

A ratio whose noise SD is no estimate is *not estimable*: NaN here, left out of means, CIs and tests, and counted
(``n_not_estimable_*``). That is an SD of 0 up to float rounding (1e-6 of the signal: a ratio of a million is no
MR measurement) or an SD from fewer than ``MIN_NOISE_PIXELS`` pixels (where the pixel count is known).
ROI statistics come from stored pixel values in the original intensity scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .descriptive import mean_ci
from .validation import ROI_LABELS, VERSIONS

PAPER_MEASURES = ("snr1", "snr2", "cnr")
TISSUE_MEASURES = ("snr1_tissue", "snr2_tissue", "cnr_tissue")
MEASURES = PAPER_MEASURES + TISSUE_MEASURES
IMAGE_KEYS = ("case_id", "sequence", "version")
# An SD from 9 pixels (3 x 3) has a relative standard error of 25 %; fewer is no noise estimate.
MIN_NOISE_PIXELS = 9
MAX_RATIO = 1e6
# Per ROI row of the ROI export: the SNRs of this ROI and the CNRs of its image.
ROW_RATIOS = ("snr", "snr_tissue", "cnr", "cnr_tissue")


def ratio(signal, noise_sd, noise_pixels=np.nan) -> np.ndarray:
    """signal / noise_sd, NaN where the SD is no noise estimate (see the module docstring); elementwise.

    An unknown (NaN) pixel count is not checked.
    """
    signal, sd, pixels = (np.asarray(v, dtype=float) for v in (signal, noise_sd, noise_pixels))
    usable = (sd > 0) & (np.abs(signal) < MAX_RATIO * sd) & ~(pixels < MIN_NOISE_PIXELS)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable, signal / sd, np.nan)


def pooled_sd(sd1, n1, sd2, n2) -> np.ndarray:
    """The SD pooled over two ROIs, weighted by their degrees of freedom; equal weights where a count is unknown."""
    sd1, n1, sd2, n2 = (np.asarray(v, dtype=float) for v in (sd1, n1, sd2, n2))
    known = np.isfinite(n1) & np.isfinite(n2)
    w1, w2 = np.where(known, n1 - 1, 1.0), np.where(known, n2 - 1, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((w1 * sd1**2 + w2 * sd2**2) / (w1 + w2))


def image_measures(rois: pd.DataFrame, keys: Sequence[str] = IMAGE_KEYS) -> pd.DataFrame:
    """One row per image (``keys``) that has all three ROIs, with the six measures, NaN where not estimable.

    ``rois`` has one row per image and ROI label; ``pixel_count`` is optional.
    """
    rois = rois.assign(pixel_count=pd.to_numeric(rois["pixel_count"]) if "pixel_count" in rois else np.nan)
    wide = rois.pivot_table(index=list(keys), columns="roi", values=["mean", "sd", "pixel_count"], aggfunc="first")
    wide = wide.reindex(columns=pd.MultiIndex.from_product([["mean", "sd", "pixel_count"], ROI_LABELS]))
    wide = wide.dropna(subset=[(stat, roi) for stat in ("mean", "sd") for roi in ROI_LABELS])
    m1, m2 = wide[("mean", "S1")], wide[("mean", "S2")]
    s1, s2, background = wide[("sd", "S1")], wide[("sd", "S2")], wide[("sd", "background")]
    n1, n2, n_background = (wide[("pixel_count", roi)] for roi in ROI_LABELS)
    contrast = (m1 - m2).abs()
    snr1_tissue, snr2_tissue = ratio(m1, s1, n1), ratio(m2, s2, n2)
    both = np.isfinite(snr1_tissue) & np.isfinite(snr2_tissue)
    out = pd.DataFrame(
        {
            "snr1": ratio(m1, background, n_background),
            "snr2": ratio(m2, background, n_background),
            "cnr": ratio(contrast, background, n_background),
            "snr1_tissue": snr1_tissue,
            "snr2_tissue": snr2_tissue,
            "cnr_tissue": np.where(both, ratio(contrast, pooled_sd(s1, n1, s2, n2)), np.nan),
        },
        index=wide.index,
    )
    return out.reset_index()


def roi_ratios(rois: pd.DataFrame, keys: Sequence[str] = (*IMAGE_KEYS, "reader")) -> pd.DataFrame:
    """``ROW_RATIOS`` and ``not_estimable`` for each row of an ROI export, in its order.

    ``snr`` is the row's mean / SD of its image's background, ``snr_tissue`` its mean / its own SD; ``cnr`` and
    ``cnr_tissue`` are its image's. Background rows have none. The image is the latest ROI of each label with the
    same ``keys`` (one reader's measurement of one image). ``not_estimable`` names the ratios that are NaN although
    their ROIs were drawn, space-separated, or is empty.
    """
    keys = list(keys)
    latest = rois.sort_values("updated_at", kind="stable").drop_duplicates([*keys, "roi"], keep="last")
    background = latest.loc[latest["roi"] == "background", [*keys, "sd", "pixel_count"]]
    rows = rois[[*keys, "roi", "mean", "sd", "pixel_count"]].merge(
        background, on=keys, how="left", suffixes=("", "_background"), indicator="has_background"
    )
    rows = rows.merge(image_measures(latest, keys), on=keys, how="left", indicator="complete")
    tissue = (rows["roi"] != "background").to_numpy()[:, None]
    out = pd.DataFrame(
        {
            "snr": ratio(rows["mean"], rows["sd_background"], rows["pixel_count_background"]),
            "snr_tissue": ratio(rows["mean"], rows["sd"], rows["pixel_count"]),
            "cnr": rows["cnr"],
            "cnr_tissue": rows["cnr_tissue"],
        }
    )
    out = out.where(np.broadcast_to(tissue, out.shape))
    drawn = pd.DataFrame(
        {
            "snr": rows["has_background"] == "both",
            "snr_tissue": True,
            "cnr": rows["complete"] == "both",
            "cnr_tissue": rows["complete"] == "both",
        }
    )
    missing = out.isna().to_numpy() & drawn.to_numpy() & tissue
    out["not_estimable"] = [" ".join(n for n, m in zip(ROW_RATIOS, flags, strict=True) if m) for flags in missing]
    out.index = rois.index
    return out


def snr_table(rois: pd.DataFrame) -> pd.DataFrame:
    """Table 2: mean and 95 % CI per sequence x measure x version, and paired tests DL vs conventional.

    Means, CIs and tests use the estimable values only; ``n_not_estimable_*`` counts the images left out. The paired
    t-test and the Wilcoxon signed-rank test use the cases estimable in both versions.
    """
    measures = image_measures(rois)
    rows = []
    for sequence, block in measures.groupby("sequence", sort=False):
        paired = block.pivot(index="case_id", columns="version", values=list(MEASURES))
        for measure in MEASURES:
            summary, skipped = {}, {}
            for version in VERSIONS:
                values = block.loc[block["version"] == version, measure]
                summary[version] = mean_ci(values.dropna().to_numpy())
                skipped[version] = int(values.isna().sum())
            both = paired[measure].reindex(columns=list(VERSIONS)).dropna()
            p_t = p_w = np.nan
            if len(both) >= 2:
                diff = both["dl"] - both["conventional"]
                if diff.std(ddof=1) > 0:
                    p_t = float(stats.ttest_rel(both["dl"], both["conventional"]).pvalue)
                if (diff != 0).any():
                    p_w = float(stats.wilcoxon(both["dl"], both["conventional"]).pvalue)
            rows.append(
                (sequence, measure, *summary["conventional"], *summary["dl"], len(both), p_t, p_w,
                 skipped["conventional"], skipped["dl"])
            )
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
        "n_not_estimable_conventional",
        "n_not_estimable_dl",
    ]
    return pd.DataFrame(rows, columns=columns)
