"""Hand-computed cases for the statistics core; each would fail if a convention changed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.miscmodels.ordinal_model import OrderedModel

from apps.analysis.stats import run_analysis, write_outputs
from apps.analysis.stats.agreement import (
    confusion_table,
    kappa_weights,
    percent_agreement,
    reader_agreement,
    weighted_kappa,
)
from apps.analysis.stats.clmm import fit_clm_start, fit_clmm
from apps.analysis.stats.descriptive import mean_ci
from apps.analysis.stats.snr import MIN_NOISE_PIXELS, image_measures, pooled_sd, ratio, snr_table

# Two raters, three categories: (1,1) (1,2) (2,2) (3,3).
RATER_A = np.array([1, 1, 2, 3])
RATER_B = np.array([1, 2, 2, 3])


def test_linear_kappa_by_hand() -> None:
    # po = (1 + .5 + 1 + 1) / 4 = .875; pc = .5625 from margins (.5,.25,.25) x (.25,.5,.25)
    table = confusion_table(RATER_A, RATER_B, (1, 2, 3))
    kappa = weighted_kappa(table, kappa_weights(3, "linear"))
    assert kappa.value == pytest.approx((0.875 - 0.5625) / (1 - 0.5625))
    assert kappa.value == pytest.approx(5 / 7)


def test_quadratic_kappa_by_hand() -> None:
    # po = (1 + .75 + 1 + 1) / 4 = .9375; pc = .6875
    table = confusion_table(RATER_A, RATER_B, (1, 2, 3))
    assert weighted_kappa(table, kappa_weights(3, "quadratic")).value == pytest.approx(0.8)


def test_kappa_standard_error_and_interval() -> None:
    """ASE of Fleiss, Cohen & Everitt (vcd::Kappa); 0.254080 and 0.197990 computed independently."""
    table = confusion_table(RATER_A, RATER_B, (1, 2, 3))
    linear = weighted_kappa(table, kappa_weights(3, "linear"))
    quadratic = weighted_kappa(table, kappa_weights(3, "quadratic"))
    assert linear.se == pytest.approx(0.254079583632423, abs=1e-12)
    assert quadratic.se == pytest.approx(0.197989898732233, abs=1e-12)
    low, high = quadratic.ci
    assert (low, high) == pytest.approx(
        (0.8 - 1.959963984540054 * quadratic.se, 0.8 + 1.959963984540054 * quadratic.se)
    )


def test_unused_categories_keep_their_distance() -> None:
    """On the fixed 1..5 scale, 2 and 5 are three steps apart even when 3 and 4 were never used."""
    a, b = np.array([1, 2, 5, 5]), np.array([2, 2, 5, 2])
    # disagreement form: 1 - sum(|i-j| p_ij) / sum(|i-j| r_i c_j) = 1 - 1 / 1.75
    fixed = weighted_kappa(confusion_table(a, b), kappa_weights(5, "linear"))
    assert fixed.value == pytest.approx(3 / 7)
    # only the observed levels 1, 2, 5 as adjacent categories would give 1 - .5 / .75
    observed = weighted_kappa(confusion_table(a, b, (1, 2, 5)), kappa_weights(3, "linear"))
    assert observed.value == pytest.approx(1 / 3)


def test_kappa_undefined_when_chance_agreement_is_total() -> None:
    table = confusion_table(np.array([4, 4]), np.array([4, 4]))
    assert math.isnan(weighted_kappa(table, kappa_weights(5, "linear")).value)


def test_perfect_agreement() -> None:
    ratings = np.array([1, 2, 3, 4, 5])
    table = confusion_table(ratings, ratings)
    assert weighted_kappa(table, kappa_weights(5, "quadratic")).value == pytest.approx(1.0)
    assert percent_agreement(ratings, ratings) == 100.0


def test_percent_agreement_by_hand() -> None:
    assert percent_agreement(RATER_A, RATER_B) == 75.0
    assert percent_agreement(np.array([1, 2, 3]), np.array([2, 2, 4])) == pytest.approx(100 / 3)


def test_unknown_category_is_rejected() -> None:
    with pytest.raises(ValueError, match="not one of the categories"):
        confusion_table(np.array([1, 6]), np.array([1, 2]))


def test_reader_agreement_pairs_only_shared_cases() -> None:
    rows = [
        ("c1", "R1", 1),
        ("c1", "R2", 1),
        ("c2", "R1", 1),
        ("c2", "R2", 2),
        ("c3", "R1", 2),
        ("c3", "R2", 2),
        ("c4", "R1", 3),
        ("c4", "R2", 3),
        ("c5", "R1", 5),
        ("c5", "R3", 5),
    ]
    scores = pd.DataFrame(rows, columns=["case_id", "reader", "score"]).assign(
        sequence="T2W", item="noise", version="dl"
    )
    table = reader_agreement(scores)
    r1r2 = table[(table["reader_1"] == "R1") & (table["reader_2"] == "R2")].iloc[0]
    assert r1r2["n"] == 4
    assert r1r2["percent_agreement"] == 75.0
    assert set(zip(table["reader_1"], table["reader_2"], strict=True)) == {("R1", "R2"), ("R1", "R3")}


def test_mean_ci_by_hand() -> None:
    # mean 3, sd sqrt(2.5), t(0.975, 4) = 2.7764451051977987
    n, mean, low, high = mean_ci(np.array([1, 2, 3, 4, 5]))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (n, mean) == (5, 3.0)
    assert (low, high) == pytest.approx((3 - half, 3 + half), abs=1e-12)


def test_mean_ci_of_single_value_has_no_interval() -> None:
    n, mean, low, high = mean_ci(np.array([4]))
    assert (n, mean) == (1, 4.0)
    assert math.isnan(low) and math.isnan(high)


def test_ratio_by_hand_and_not_estimable_noise() -> None:
    assert ratio(300.0, 10.0) == 30.0
    assert ratio(0.0, 5.0) == 0.0
    assert ratio(300.0, 10.0, MIN_NOISE_PIXELS) == 30.0
    for sd, pixels in ((0.0, 50), (300e-7, 50), (-1.0, 50), (10.0, MIN_NOISE_PIXELS - 1), (math.nan, 50)):
        value = ratio(300.0, sd, pixels)
        assert math.isnan(value), (sd, pixels)
    assert not np.isinf(ratio(np.array([1.0, 0.0]), np.array([0.0, 0.0]))).any()


def test_pooled_sd_by_hand() -> None:
    # (9 * 3^2 + 29 * 4^2) / 38 = 545 / 38
    assert pooled_sd(3.0, 10, 4.0, 30) == pytest.approx(math.sqrt(545 / 38))
    assert pooled_sd(3.0, math.nan, 4.0, 30) == pytest.approx(math.sqrt(12.5))


def test_image_measures_by_hand() -> None:
    rows = [
        ("c1", "T2W", "dl", "S1", 400.0, 8.0, 20),
        ("c1", "T2W", "dl", "S2", 300.0, 6.0, 30),
        ("c1", "T2W", "dl", "background", 3.0, 0.0, 25),
    ]
    rois = pd.DataFrame(rows, columns=["case_id", "sequence", "version", "roi", "mean", "sd", "pixel_count"])
    image = image_measures(rois).iloc[0]
    assert image[["snr1", "snr2", "cnr"]].isna().all()
    assert (image["snr1_tissue"], image["snr2_tissue"]) == (50.0, 50.0)
    assert image["cnr_tissue"] == pytest.approx(100 / math.sqrt((19 * 64 + 29 * 36) / 48))
    flat_s2 = rois.assign(sd=[8.0, 0.0, 2.0])
    image = image_measures(flat_s2).iloc[0]
    assert (image["snr1"], image["snr2"], image["cnr"]) == (200.0, 150.0, 50.0)
    assert image["snr1_tissue"] == 50.0 and math.isnan(image["snr2_tissue"]) and math.isnan(image["cnr_tissue"])


def _roi_rows(case: str, version: str, s1: float, s2: float, bg_sd: float) -> list[tuple]:
    return [
        (case, "T2W", version, "S1", s1, 5.0),
        (case, "T2W", version, "S2", s2, 5.0),
        (case, "T2W", version, "background", 3.0, bg_sd),
    ]


def test_snr_table_by_hand() -> None:
    rows = (
        _roi_rows("c1", "conventional", 300, 200, 10)  # SNR1 30, SNR2 20, CNR 10
        + _roi_rows("c2", "conventional", 400, 200, 10)  # 40, 20, 20
        + _roi_rows("c1", "dl", 300, 200, 5)  # 60, 40, 20
        + _roi_rows("c2", "dl", 400, 200, 4)  # 100, 50, 50
    )
    rois = pd.DataFrame(rows, columns=["case_id", "sequence", "version", "roi", "mean", "sd"])
    table = snr_table(rois).set_index("measure")
    assert table.loc["snr1", "mean_conventional"] == pytest.approx(35.0)
    assert table.loc["snr1", "mean_dl"] == pytest.approx(80.0)
    assert table.loc["cnr", "mean_conventional"] == pytest.approx(15.0)
    assert table.loc["cnr", "mean_dl"] == pytest.approx(35.0)
    # CI of (30, 40): 35 +/- t(0.975, 1) * sd / sqrt(2) = 35 +/- 12.7062 * 5
    assert table.loc["snr1", "ci_low_conventional"] == pytest.approx(35 - 12.706204736174707 * 5)
    # paired differences of SNR1: 30 and 60 -> t = 45 / (21.2132 / sqrt 2) = 3, df 1
    assert table.loc["snr1", "p_paired_t"] == pytest.approx(0.2048327646991335)
    assert table.loc["snr1", "n_paired"] == 2
    assert (table[["n_not_estimable_conventional", "n_not_estimable_dl"]] == 0).all().all()
    assert table.loc["snr1_tissue", "mean_dl"] == pytest.approx(70.0)  # 300 / 5 and 400 / 5


def test_snr_table_skips_and_counts_a_flat_background() -> None:
    """A DL background of SD 0 makes the paper's ratios not estimable: left out of mean, CI and test, counted."""
    rows = (
        _roi_rows("c1", "conventional", 300, 200, 10)
        + _roi_rows("c2", "conventional", 400, 200, 10)
        + _roi_rows("c3", "conventional", 500, 200, 10)
        + _roi_rows("c1", "dl", 300, 200, 5)
        + _roi_rows("c2", "dl", 400, 200, 0)
        + _roi_rows("c3", "dl", 500, 200, 4)
    )
    rois = pd.DataFrame(rows, columns=["case_id", "sequence", "version", "roi", "mean", "sd"])
    table = snr_table(rois).set_index("measure")
    for measure in ("snr1", "snr2", "cnr"):
        assert table.loc[measure, "n_dl"] == 2 and table.loc[measure, "n_not_estimable_dl"] == 1
        assert table.loc[measure, "n_conventional"] == 3 and table.loc[measure, "n_not_estimable_conventional"] == 0
        assert table.loc[measure, "n_paired"] == 2
    assert table.loc["snr1", "mean_dl"] == pytest.approx((60 + 125) / 2)
    assert not np.isinf(table.select_dtypes("number").to_numpy(dtype=float)).any()
    assert table.loc["snr1_tissue", "n_dl"] == 3 and table.loc["snr1_tissue", "n_not_estimable_dl"] == 0


def _simulated_scores(seed: int, effect: float) -> pd.DataFrame:
    """A small latent-variable study: 3 sites x 20 patients, 2 readers per patient, both versions."""
    rng = np.random.default_rng(seed)
    cuts = np.array([-2.0, -0.7, 0.5, 1.8])
    rows = []
    site_effect = dict(zip("ABC", rng.normal(0, 0.3, 3), strict=True))
    reader_effect = {"R1": 0.0, "R2": 0.6, "R3": -0.3}
    readers_for = {"A": ("R2", "R3"), "B": ("R1", "R3"), "C": ("R1", "R2")}
    for site in "ABC":
        for k in range(20):
            patient = f"{site}{k:02d}"
            u = rng.normal(0, 0.8)
            for reader in readers_for[site]:
                for version in ("conventional", "dl"):
                    eta = effect * (version == "dl") + reader_effect[reader] + site_effect[site] + u
                    latent = eta + rng.logistic()
                    score = 1 + int(np.searchsorted(cuts, latent))
                    rows.append((f"C-{patient}", patient, site, reader, "T2W", version, "noise", score))
    columns = ["case_id", "patient_id", "site", "reader", "sequence", "version", "item", "score"]
    return pd.DataFrame(rows, columns=columns)


def test_clmm_sign_convention_positive_effect_raises_scores() -> None:
    up = run_analysis(_simulated_scores(1, 1.5)).clmm.iloc[0]
    down = run_analysis(_simulated_scores(1, -1.5)).clmm.iloc[0]
    assert up["coef_version_dl"] > 0.5
    assert down["coef_version_dl"] < -0.5
    assert up["z"] == pytest.approx(up["coef_version_dl"] / up["se"])


def test_clmm_without_variance_reduces_to_plain_cumulative_logit() -> None:
    """The start values are the plain model; statsmodels' OrderedModel fits the same likelihood."""
    scores = _simulated_scores(2, 1.0)
    x = np.column_stack([(scores["version"] == "dl"), (scores["reader"] == "R2"), (scores["reader"] == "R3")])
    theta, beta = fit_clm_start(scores["score"].to_numpy() - 1, x.astype(float), 5)
    ref = OrderedModel(scores["score"].to_numpy() - 1, x.astype(float), distr="logit").fit(
        method="bfgs", disp=False, gtol=1e-8
    )
    np.testing.assert_allclose(beta, ref.params[:3], atol=1e-4)
    np.testing.assert_allclose(theta, ref.model.transform_threshold_params(ref.params)[1:-1], atol=1e-4)


def test_clmm_rejects_crossed_groups() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    x = np.zeros((6, 1))
    with pytest.raises(ValueError, match="nested"):
        fit_clmm(y, x, np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 0, 1, 1]), ["v"])


def _minimal_scores() -> pd.DataFrame:
    return _simulated_scores(3, 0.5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns=["reader"]), "missing column"),
        (lambda df: df.iloc[0:0], "no rows"),
        (lambda df: df.assign(score=df["score"].where(df.index != 0, 6)), "not an integer in 1..5"),
        (lambda df: df.assign(score=df["score"].astype(float).where(df.index != 0, 2.5)), "not an integer"),
        (
            lambda df: df.assign(score=df["score"].astype(object).where(df.index != 0, "good")),
            "not an integer",
        ),
        (lambda df: df.assign(version=df["version"].replace("dl", "enhanced")), "unknown version"),
        (lambda df: pd.concat([df, df.iloc[:1]]), "twice"),
    ],
)
def test_bad_scores_raise_clear_errors(mutate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_analysis(mutate(_minimal_scores()))


def test_bad_patients_raise_clear_errors() -> None:
    patients = pd.DataFrame({"patient_id": ["A00"], "site": ["A"], "age": ["old"]})
    with pytest.raises(ValueError, match="missing column"):
        run_analysis(_minimal_scores(), patients)


def test_outputs_are_written_like_r(tmp_path) -> None:
    """Quoted strings, bare numbers, NA for missing: the layout of the R reference files."""
    result = run_analysis(_minimal_scores())
    paths = write_outputs(result, tmp_path)
    assert {p.name for p in paths} == {
        "means.csv",
        "clmm.csv",
        "kappa.csv",
        "kappa_detail.csv",
        "paired.csv",
        "paired_detail.csv",
    }
    lines = (tmp_path / "means.csv").read_text().splitlines()
    assert lines[0] == '"sequence","item","version","n","mean","ci_low","ci_high"'
    assert lines[1].startswith('"T2W","noise","conventional",120,')
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "means.csv"), result.means, check_exact=False, rtol=1e-14
    )
