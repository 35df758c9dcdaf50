"""Power by simulation (``apps.analysis.stats.power``): alpha calibration, power near 1 for a large effect, the
vectorised planned test equal to the analysis' own, pilot parameters recovered, and grids refused with reasons.

Monte-Carlo tolerance: a rejection rate estimated from n simulated studies has standard error sqrt(a (1 - a) / n);
the calibration tests accept the rate within 3 standard errors of alpha (fixed seeds, so each run is the same)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from apps.analysis.stats import power
from apps.analysis.stats.paired import holm
from apps.analysis.stats.planned import PlanSpec, primary_analysis
from tests.analysis.conftest import require_reference_data

WILCOXON = PlanSpec(sequences=("T2W",), items=("overall_quality",), test="wilcoxon", hypothesis="superiority",
                    alpha=0.05, multiplicity="holm")
CLMM = PlanSpec(sequences=("T2W",), items=("overall_quality",), test="clmm", hypothesis="superiority",
                alpha=0.05, multiplicity="holm")


def mc_tolerance(alpha: float, n: int) -> float:
    return 3.0 * math.sqrt(alpha * (1.0 - alpha) / n)


@pytest.fixture(scope="module")
def pilot() -> list[power.PilotItem]:
    scores = pd.read_csv(require_reference_data() / "scores.csv")
    return power.estimate_pilot(scores, [("T2W", "overall_quality"), ("FLAIR", "noise")])


def test_pilot_parameters_are_the_planned_clmm_estimates_of_the_reference_study(pilot) -> None:
    t2w = pilot[0]
    # R's ordinal::clmm on this comparison (ref_clmm.csv): beta 0.9958, var_patient 0.621, var_site ~ 0.
    assert t2w.dl_effect == pytest.approx(0.9958, abs=0.02)
    assert t2w.sd_patient**2 + t2w.sd_site**2 == pytest.approx(0.621, rel=0.1)
    assert t2w.levels == (1, 2, 3, 4, 5) and len(t2w.thresholds) == 4
    assert t2w.n_cases == 294 and t2w.n_readers == 3
    assert t2w.sd_reader > 0.2, "the reference study has one generous reader"


def test_rejection_rate_under_no_effect_is_alpha_within_monte_carlo_error(pilot) -> None:
    n = 800
    grid = power.PowerGrid(cases=[20, 60], readers=[3], readers_per_case=[2], modes=["single", "paired"],
                           n_studies=n, effect=0.0, seed=11)
    results = power.power_grid(pilot[:1], grid, WILCOXON)
    assert len(results) == 4
    for r in results:
        assert abs(r.power - 0.05) <= mc_tolerance(0.05, n), (r.design, r.power)
    pooled = sum(r.rejections for r in results) / (4 * n)
    assert abs(pooled - 0.05) <= mc_tolerance(0.05, 4 * n), pooled


def test_non_inferiority_is_shown_often_where_superiority_is_not(pilot) -> None:
    spec = PlanSpec(sequences=("T2W",), items=("overall_quality",), test="wilcoxon", hypothesis="non_inferiority",
                    alpha=0.025, multiplicity="none", margin=0.25)
    null = power.power_grid(pilot[:1], power.PowerGrid(cases=[60], readers=[3], readers_per_case=[2], n_studies=1500,
                                                       effect=0.0, seed=5), spec)[0]
    # With no true difference, a margin of 0.25 score points is easy to beat: power well above alpha.
    assert null.power > 0.5


def test_a_large_effect_reaches_power_near_one_and_power_grows_with_cases(pilot) -> None:
    grid = power.PowerGrid(cases=[10, 30, 80], readers=[3], readers_per_case=[2], n_studies=400, effect=2.5, seed=3)
    results = power.power_grid(pilot[:1], grid, WILCOXON)
    powers = [r.power for r in results]
    assert powers[-1] >= 0.99, powers
    assert powers[0] < powers[1] <= powers[2]


def test_two_primary_comparisons_are_holm_adjusted_and_must_both_reject(pilot) -> None:
    spec = PlanSpec(sequences=("T2W", "FLAIR"), items=("overall_quality", "noise"), test="wilcoxon",
                    hypothesis="superiority", alpha=0.05, multiplicity="holm")
    two = [pilot[0], power.replace(pilot[1], sequence="FLAIR", item="noise")]
    r = power.power_grid(two, power.PowerGrid(cases=[40], readers=[3], readers_per_case=[2], n_studies=300,
                                              effect=0.8, seed=2), spec)[0]
    assert r.rejections <= min(r.per_comparison)
    assert r.rejections > 0


@pytest.mark.parametrize("hypothesis,margin,multiplicity", [
    ("superiority", None, "holm"), ("non_inferiority", 0.3, "holm"), ("superiority", None, "none"),
])
def test_vectorised_wilcoxon_equals_the_planned_analysis_of_each_simulated_study(
    pilot, hypothesis, margin, multiplicity
) -> None:
    spec = PlanSpec(sequences=("T2W", "FLAIR"), items=("overall_quality", "noise"), test="wilcoxon",
                    hypothesis=hypothesis, alpha=0.05, multiplicity=multiplicity, margin=margin)
    # primary_analysis runs every comparison of the plan; two of them are simulated.
    pilots = [pilot[0], power.replace(pilot[1], sequence="FLAIR", item="noise")]
    rng = np.random.default_rng(7)
    design = power.Design(n_cases=12, n_readers=3, readers_per_case=2, mode="single")
    simulated = [power.simulate_scores(p, design, 0.4, 15, rng) for p in pilots]
    fast = power.planned_p(pilots, simulated, spec)
    for study in range(15):
        frames = [power.long_frame(p, s[0][study], s[1], s[2]) for p, s in zip(pilots, simulated, strict=True)]
        table = primary_analysis(pd.concat(frames, ignore_index=True), pd.DataFrame(), spec)
        table = table.set_index(["sequence", "item"])
        expected = [table.loc[("T2W", "overall_quality"), "p"], table.loc[("FLAIR", "noise"), "p"]]
        expected = holm(expected) if multiplicity == "holm" else np.array(expected)
        # The plan's other two comparisons (T2W noise, FLAIR overall quality) have no scores: NaN, not counted.
        np.testing.assert_allclose(fast[study], expected, rtol=1e-12, equal_nan=True)


def test_holm_along_rows_equals_the_analysis_holm() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, size=(50, 4))
    p[3, 1] = np.nan
    p[7] = np.nan
    fast = power.holm_rows(p)
    for row, expected in zip(fast, map(holm, p), strict=True):
        np.testing.assert_allclose(row, expected, equal_nan=True)


def test_the_pilot_fit_recovers_the_parameters_a_study_was_simulated_with() -> None:
    truth = power.PilotItem(sequence="T2W", item="noise", levels=(1, 2, 3, 4, 5), thresholds=(-3.0, -1.5, 0.5, 2.5),
                            dl_effect=1.0, sd_reader=0.5, sd_patient=1.0, sd_site=0.3, sd_reader_case=0.9,
                            n_cases=0, n_readers=0)
    design = power.Design(n_cases=300, n_readers=3, readers_per_case=3, mode="paired")
    scores, reader_of, site_of = power.simulate_scores(truth, design, truth.dl_effect, 1, np.random.default_rng(4))
    block = power.long_frame(truth, scores[0], reader_of, site_of)
    block["reader_site"] = "X"
    fitted = power.estimate_pilot(block, [("T2W", "noise")])[0]
    assert fitted.dl_effect == pytest.approx(1.0, abs=0.2)
    assert fitted.sd_reader_case == pytest.approx(0.9, abs=0.3)
    assert math.hypot(fitted.sd_patient, fitted.sd_site) == pytest.approx(math.hypot(1.0, 0.3), abs=0.25)
    np.testing.assert_allclose(fitted.thresholds, truth.thresholds, atol=0.45)


def test_paired_reading_gains_power_over_single_when_readers_carry_a_case_impression() -> None:
    item = power.PilotItem(sequence="T2W", item="noise", levels=(1, 2, 3, 4, 5), thresholds=(-3.0, -1.5, 0.5, 2.5),
                           dl_effect=0.5, sd_reader=0.3, sd_patient=0.8, sd_site=0.2, sd_reader_case=1.5,
                           n_cases=0, n_readers=0)
    grid = power.PowerGrid(cases=[40], readers=[2], readers_per_case=[2], modes=["single", "paired"],
                           n_studies=600, seed=9)
    single, paired = power.power_grid([item], grid, WILCOXON)
    assert paired.power - single.power > 3 * math.hypot(single.mc_se, paired.mc_se), (single.power, paired.power)


def test_clmm_path_rejects_at_alpha_under_no_effect_and_always_under_a_large_one(pilot) -> None:
    """Bounded: 100 CLMM fits under no effect (tolerance 3 SE = 0.065) and 20 under a large effect."""
    null = power.power_grid(pilot[:1], power.PowerGrid(cases=[24], readers=[3], readers_per_case=[2], n_studies=100,
                                                       effect=0.0, seed=13), CLMM)[0]
    assert abs(null.power - 0.05) <= mc_tolerance(0.05, 100), null.power
    large = power.power_grid(pilot[:1], power.PowerGrid(cases=[24], readers=[3], readers_per_case=[2], n_studies=20,
                                                        effect=3.0, seed=13), CLMM)[0]
    assert large.power == 1.0


@pytest.mark.parametrize("changes,reason", [
    ({"cases": [-5, 20]}, "cases must lie between 3 and 2000 (given -5 to 20)"),
    ({"readers": [0]}, "readers must lie between 1 and 50"),
    ({"cases": [20.5]}, "cases must be a non-empty list of whole numbers"),
    ({"cases": list(range(10, 80)), "readers": [2, 3]}, "140 designs; at most 60"),
    ({"n_studies": 100000}, "between 10 and 5000 for the wilcoxon test"),
    ({"readers": [2], "readers_per_case": [3]}, "no design has readers per case <= readers"),
    ({"modes": ["sideways"]}, "modes must be among single, paired"),
    ({"effect": float("nan")}, "log odds ratio between -10 and 10"),
])
def test_bad_grids_are_refused_with_the_reason(pilot, changes, reason) -> None:
    grid = power.PowerGrid(**{"cases": [20], "readers": [3], "readers_per_case": [2], **changes})
    with pytest.raises(power.PowerInputError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        power.power_grid(pilot[:1], grid, WILCOXON)


def test_clmm_simulation_counts_are_bounded() -> None:
    grid = power.PowerGrid(cases=[20, 40, 60, 80, 100], readers=[2, 3, 4], readers_per_case=[2], n_studies=200)
    power.check_grid(grid, CLMM, 1)  # 15 designs x 200 studies x 1 comparison: 3000 fits, allowed
    with pytest.raises(power.PowerInputError, match="6000 CLMM fits; at most 4000"):
        power.check_grid(grid, CLMM, 2)
    grid.n_studies = 300
    with pytest.raises(power.PowerInputError, match="between 10 and 200 for the clmm test"):
        power.check_grid(grid, CLMM, 1)
