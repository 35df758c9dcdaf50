"""Small and degenerate studies (a pilot, a study in progress): every statistic returns a result with
NaN and a flag where R gives no value, and one bad CLMM never stops the rest of the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from apps.analysis.report import ReportMeta, render_html
from apps.analysis.stats import clmm as clmm_module
from apps.analysis.stats import run_analysis, write_outputs
from apps.analysis.stats.clmm import CLMM_COLUMNS, fit_clmm, identified_columns
from apps.analysis.stats.pipeline import KAPPA_COLUMNS
from apps.analysis.stats.table1 import table1_tests
from apps.analysis.stats.validation import SCORE_COLUMNS

VERSIONS = ("conventional", "dl")


def _scores(
    n_cases: int = 6,
    readers: tuple[str, ...] = ("R1", "R2", "R3"),
    readers_per_case: int = 1,
    sites: str = "ABC",
    versions: tuple[str, ...] = VERSIONS,
    score=lambda rng, version: int(rng.integers(1, 6)),
    items: tuple[str, ...] = ("noise",),
    seed: int = 0,
) -> pd.DataFrame:
    """Cases spread over ``sites`` round robin, each read by ``readers_per_case`` readers in turn."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_cases):
        site = sites[k % len(sites)]
        for j in range(readers_per_case):
            reader = readers[(k + j) % len(readers)]
            for version in versions:
                for item in items:
                    rows.append((f"C{k}", f"P{k}", site, reader, "T2W", version, item, score(rng, version)))
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def _clmm_row(scores: pd.DataFrame, item: str = "noise") -> pd.Series:
    table = run_analysis(scores).clmm
    return table.loc[table["item"] == item].iloc[0]


def _assert_fitted(row: pd.Series) -> None:
    assert row["converged"], row["note"]
    assert math.isfinite(row["coef_version_dl"]) and row["se"] > 0 and 0 <= row["p"] <= 1
    assert row["z"] == pytest.approx(row["coef_version_dl"] / row["se"])


def _assert_unfitted(row: pd.Series, reason: str) -> None:
    assert not row["converged"]
    assert reason in row["note"]
    assert all(math.isnan(row[c]) for c in ("coef_version_dl", "se", "z", "p", "loglik", "var_patient"))
    assert row["thresholds"] == ""


def test_six_cases_one_reader_each_fits() -> None:
    """The colleague's report: 6 cases, one reader per case, used to raise LinAlgError."""
    row = _clmm_row(_scores(n_cases=6))
    _assert_fitted(row)
    assert row["n"] == 12


def test_identical_scores_give_a_flagged_row_and_the_other_items_still_fit() -> None:
    scores = _scores(n_cases=12, readers_per_case=2, items=("noise", "motion"), seed=4)
    scores.loc[scores["item"] == "motion", "score"] = 3
    table = run_analysis(scores).clmm.set_index("item")
    _assert_unfitted(table.loc["motion"], "fewer than 2 score categories")
    _assert_fitted(table.loc["noise"])


def test_unused_categories_are_dropped_like_ordered_score() -> None:
    """Scores 1, 2 and 4 only: ``ordered(score)`` has three levels, so two thresholds."""
    row = _clmm_row(_scores(n_cases=12, readers_per_case=2, score=lambda rng, v: int(rng.choice([1, 2, 4]))))
    _assert_fitted(row)
    assert len(row["thresholds"].split(";")) == 2


def test_two_categories_give_one_threshold() -> None:
    row = _clmm_row(_scores(n_cases=12, readers_per_case=2, score=lambda rng, v: int(rng.integers(2, 4))))
    _assert_fitted(row)
    assert len(row["thresholds"].split(";")) == 1


def test_one_reader_fits_version_only_and_has_no_reader_pairs() -> None:
    result = run_analysis(_scores(n_cases=9, readers=("R1",)))
    _assert_fitted(result.clmm.iloc[0])
    assert result.kappa.empty
    assert list(result.kappa.columns[:9]) == KAPPA_COLUMNS


def test_one_version_gives_a_flagged_row_and_means() -> None:
    result = run_analysis(_scores(versions=("dl",)))
    _assert_unfitted(result.clmm.iloc[0], "only one version")
    assert list(result.means["version"]) == ["dl"]


@pytest.mark.parametrize("sites", ["A", "AB"])
def test_fewer_than_three_sites_is_refused_as_clmm_does(sites: str) -> None:
    """R's clmm stops unless every grouping factor has more than two levels."""
    _assert_unfitted(_clmm_row(_scores(n_cases=10, sites=sites)), "at least 3")


def test_as_many_random_effects_as_observations_is_refused() -> None:
    """Three single-version cases: 3 patients + 3 sites for 6 scores, which clmm refuses."""
    y, x = np.array([0, 1, 0, 1, 1, 0]), np.array([[0.0], [1.0], [0.0], [1.0], [0.0], [1.0]])
    fit = fit_clmm(y, x, np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 2, 2]), ["v"])
    assert not fit.converged and "random effects" in fit.note and math.isnan(fit.coef["v"])


def test_single_category_in_fit_clmm_is_a_result_not_an_error() -> None:
    fit = fit_clmm(np.zeros(8, dtype=int), np.ones((8, 1)), np.arange(8) // 2, np.arange(8) // 2 % 3, ["v"])
    assert not fit.converged and fit.note == "fewer than 2 score categories"
    assert math.isnan(fit.z("v")) and math.isnan(fit.p("v"))


def test_identified_columns_mirror_drop_coef() -> None:
    """A constant column is aliased with the intercept, a copy with an earlier column; order decides."""
    v = np.tile([0.0, 1.0], 4)
    r = np.repeat([0.0, 1.0], 4)
    x = np.column_stack([v, np.ones(8), v, r, 1.0 - v])
    assert identified_columns(x).tolist() == [True, False, False, True, False]


def test_reader_aliased_with_version_is_dropped_and_version_still_estimated() -> None:
    """Two readers, R1 read only conventional, R2 only DL: R drops reader R2 and keeps version."""
    scores = _scores(n_cases=12, readers=("R1",), score=lambda rng, v: int(rng.integers(1, 4)) + (v == "dl"))
    scores.loc[scores["version"] == "dl", "reader"] = "R2"
    row = _clmm_row(scores)
    _assert_fitted(row)
    assert "aliased, dropped: reader_R2" in row["note"]
    one_reader = scores.assign(reader="R1")
    assert row["coef_version_dl"] == pytest.approx(_clmm_row(one_reader)["coef_version_dl"], abs=1e-4)


def test_singular_hessian_keeps_estimates_but_no_standard_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """As summary.clmm: the estimate is printed, SE, z and p are NaN when vcov cannot be computed."""
    monkeypatch.setattr(clmm_module, "_gradient_hessian", lambda f, x, step: np.zeros((x.size, x.size)))
    row = _clmm_row(_scores(n_cases=12, readers_per_case=2))
    assert not row["converged"] and "Hessian not positive definite" in row["note"]
    assert math.isfinite(row["coef_version_dl"]) and math.isfinite(row["loglik"])
    assert math.isnan(row["se"]) and math.isnan(row["z"]) and math.isnan(row["p"])


def test_complete_separation_returns_a_row() -> None:
    """Every DL score 5, every conventional score 1: the estimate runs off; flagged or an enormous SE."""
    row = _clmm_row(_scores(n_cases=9, score=lambda rng, v: 5 if v == "dl" else 1))
    assert row["coef_version_dl"] > 10
    assert (not row["converged"] and "Hessian" in row["note"]) or row["se"] > 100


def test_optimiser_error_gives_a_flagged_row(monkeypatch: pytest.MonkeyPatch) -> None:
    real = optimize.minimize

    def failing(fun, x0, **kwargs):
        if kwargs.get("method") == "L-BFGS-B":
            raise FloatingPointError("overflow")
        return real(fun, x0, **kwargs)

    monkeypatch.setattr(clmm_module.optimize, "minimize", failing)
    _assert_unfitted(_clmm_row(_scores(n_cases=12, readers_per_case=2)), "optimiser failed: overflow")


def test_optimiser_without_convergence_keeps_estimates_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    real = optimize.minimize

    def unconverged(fun, x0, **kwargs):
        res = real(fun, x0, **kwargs)
        if kwargs.get("method") == "L-BFGS-B":
            res.success, res.message = False, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
        return res

    monkeypatch.setattr(clmm_module.optimize, "minimize", unconverged)
    row = _clmm_row(_scores(n_cases=12, readers_per_case=2))
    assert not row["converged"] and "ITERATIONS" in row["note"]
    assert math.isfinite(row["coef_version_dl"]) and row["se"] > 0


def test_mean_of_a_single_score_has_no_interval() -> None:
    means = run_analysis(_scores(n_cases=1, sites="A")).means
    assert (means["n"] == 1).all()
    assert means["ci_low"].isna().all() and means["ci_high"].isna().all()


def test_kappa_with_a_single_category_is_nan_as_in_vcd() -> None:
    """Chance agreement is total, so (po - pc) / (1 - pc) is 0 / 0: NaN, as vcd::Kappa gives."""
    kappa = run_analysis(_scores(n_cases=6, readers_per_case=2, score=lambda rng, v: 3)).kappa
    assert not kappa.empty
    assert kappa["kappa_linear"].isna().all() and kappa["kappa_quadratic"].isna().all()
    assert (kappa["percent_agreement"] == 100.0).all()
    assert kappa["kappa_linear_se"].isna().all()


def _patients(sites: str, ages: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"P{k}" for k in range(len(ages))],
            "site": [sites[k % len(sites)] for k in range(len(ages))],
            "age": ages,
            "sex": ["F", "M"] * (len(ages) // 2) + ["F"] * (len(ages) % 2),
            "tumor_type": "glioblastoma",
            "who_grade": 4,
        }
    )


def _tests_by_name(patients: pd.DataFrame) -> pd.DataFrame:
    tests = table1_tests(patients)
    assert list(tests["test"]) == ["shapiro_wilk", "kruskal_wallis", "chi_square", "chi_square", "chi_square"]
    return tests.set_index(["variable", "test"])


def test_table1_with_one_site() -> None:
    tests = _tests_by_name(_patients("A", [40.0, 52.0, 61.0, 70.0]))
    assert math.isfinite(tests.loc[("age", "shapiro_wilk"), "p"])
    assert tests.loc[("age", "kruskal_wallis")].isna().all()
    assert tests.loc[("sex", "chi_square")].isna().all()


def test_table1_with_constant_age() -> None:
    """shapiro.test stops on identical values and kruskal.test gives NaN; both rows are NaN."""
    tests = _tests_by_name(_patients("ABC", [50.0] * 6))
    assert tests.loc[("age", "shapiro_wilk")].isna().all()
    assert tests.loc[("age", "kruskal_wallis")].isna().all()
    assert math.isfinite(tests.loc[("sex", "chi_square"), "statistic"])
    assert tests.loc[("tumor_type", "chi_square")].isna().all()


def test_table1_with_two_patients() -> None:
    tests = _tests_by_name(_patients("AB", [40.0, 60.0]))
    assert tests.loc[("age", "shapiro_wilk")].isna().all()
    assert tests.loc[("age", "kruskal_wallis"), "df"] == 1


def _rois(cases: list[str], versions: tuple[str, ...] = VERSIONS) -> pd.DataFrame:
    rows = []
    for k, case in enumerate(cases):
        for version in versions:
            background = 10.0 if version == "conventional" else 4.0 + k
            for roi, mean, sd in (
                ("S1", 400.0 + k, 9.0),
                ("S2", 300.0, 9.0),
                ("background", 5.0, background),
            ):
                rows.append((case, "T2W", version, roi, mean, sd))
    return pd.DataFrame(rows, columns=["case_id", "sequence", "version", "roi", "mean", "sd"])


def test_snr_with_one_pair_has_no_test_or_interval() -> None:
    snr = run_analysis(_scores(n_cases=1, sites="A"), rois_df=_rois(["C0"])).snr
    assert (snr["n_paired"] == 1).all()
    assert snr[["p_paired_t", "p_wilcoxon", "ci_low_dl", "ci_high_conventional"]].isna().all().all()


def test_snr_with_one_version_only() -> None:
    snr = run_analysis(_scores(n_cases=3), rois_df=_rois(["C0", "C1", "C2"], ("dl",))).snr
    assert (snr["n_conventional"] == 0).all() and (snr["n_paired"] == 0).all()
    assert snr["mean_conventional"].isna().all() and snr["p_paired_t"].isna().all()
    assert snr["ci_low_dl"].notna().all()


def test_a_zero_sd_is_data_and_a_negative_sd_is_refused() -> None:
    rois = _rois(["C0", "C1"])
    rois.loc[rois["roi"] == "background", "sd"] = 0.0
    snr = run_analysis(_scores(n_cases=2), rois_df=rois).snr.set_index("measure")
    assert (snr.loc[["snr1", "snr2", "cnr"], ["n_not_estimable_conventional", "n_not_estimable_dl"]] == 2).all().all()
    assert snr.loc[["snr1", "snr2", "cnr"], ["mean_conventional", "mean_dl", "p_paired_t"]].isna().all().all()
    assert (snr.loc["snr1_tissue", ["n_conventional", "n_dl"]] == 2).all()
    rois.loc[0, "sd"] = -1.0
    with pytest.raises(ValueError, match="sd must not be negative"):
        run_analysis(_scores(n_cases=2), rois_df=rois)


def test_snr_without_a_complete_image_is_an_empty_table() -> None:
    rois = _rois(["C0"])
    snr = run_analysis(_scores(n_cases=1, sites="A"), rois_df=rois[rois["roi"] != "background"]).snr
    assert snr.empty and "p_paired_t" in snr.columns


def test_degenerate_outputs_keep_the_reference_columns(tmp_path: Path) -> None:
    """NaN rows are written as NA; the note stays out of clmm.csv, whose columns are R's."""
    scores = _scores(n_cases=12, readers_per_case=2, items=("noise", "motion"))
    scores.loc[scores["item"] == "motion", "score"] = 2
    write_outputs(run_analysis(scores), tmp_path)
    written = pd.read_csv(tmp_path / "clmm.csv")
    assert list(written.columns) == CLMM_COLUMNS
    motion = (tmp_path / "clmm.csv").read_text().splitlines()[2]
    assert motion == '"T2W","motion",NA,NA,NA,NA,NA,NA,NA,""'


def test_invalid_input_still_raises() -> None:
    with pytest.raises(ValueError, match="not an integer"):
        run_analysis(_scores().assign(score=0))


def _random_study(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A tiny study in progress: 1-10 cases, 1-3 sites and readers, gaps, few categories."""
    n_cases, n_sites, n_readers = int(rng.integers(1, 11)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    n_categories = int(rng.integers(1, 6))
    lowest = int(rng.integers(1, 7 - n_categories))
    scores, patients, rois = [], [], []
    for k in range(n_cases):
        site = "ABC"[k % n_sites]
        patients.append(
            (
                f"P{k}",
                site,
                float(rng.choice([50, rng.integers(20, 90)])),
                rng.choice(["F", "M"]),
                "glioblastoma",
                int(rng.integers(2, 5)),
            )
        )
        readers = rng.choice(n_readers, size=int(rng.integers(1, n_readers + 1)), replace=False)
        for sequence in ("T2W", "FLAIR")[: int(rng.integers(1, 3))]:
            for version in VERSIONS:
                if rng.random() < 0.2:
                    continue
                for roi in ("S1", "S2", "background")[: int(rng.integers(2, 4))]:
                    rois.append(
                        (
                            f"C{k}",
                            sequence,
                            version,
                            roi,
                            float(rng.uniform(1, 500)),
                            float(rng.uniform(1, 20)),
                        )
                    )
                for reader in readers:
                    for item in ("noise", "motion"):
                        score = lowest + int(rng.integers(n_categories))
                        scores.append(
                            (f"C{k}", f"P{k}", site, f"R{reader + 1}", sequence, version, item, score)
                        )
    return (
        pd.DataFrame(scores, columns=list(SCORE_COLUMNS)),
        pd.DataFrame(patients, columns=["patient_id", "site", "age", "sex", "tumor_type", "who_grade"]),
        pd.DataFrame(rois, columns=["case_id", "sequence", "version", "roi", "mean", "sd"]),
    )


@pytest.mark.parametrize("seed", range(30))
def test_random_tiny_studies_always_give_a_report(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    scores, patients, rois = _random_study(rng)
    while scores.empty:
        scores, patients, rois = _random_study(rng)
    result = run_analysis(scores, patients, rois)
    combos = scores[["sequence", "item"]].drop_duplicates()
    assert len(result.clmm) == len(combos)
    for _, row in result.clmm.iterrows():
        if row["converged"]:
            assert math.isfinite(row["coef_version_dl"]) and row["se"] > 0
        else:
            assert row["note"], "a fit that did not converge must say why"
    assert len(result.means) == len(scores[["sequence", "item", "version"]].drop_duplicates())
    assert len(result.table1_tests) == 5
    write_outputs(result, tmp_path)
    assert list(pd.read_csv(tmp_path / "clmm.csv").columns) == CLMM_COLUMNS


def test_report_renders_a_tiny_study_without_snr_or_clmm() -> None:
    """A pilot: one site (no CLMM), no complete ROI image (empty Table 2); the page still renders."""
    rois = _rois(["C0"])
    result = run_analysis(_scores(n_cases=2, sites="A"), rois_df=rois[rois["roi"] != "background"])
    assert result.snr.empty and not result.clmm["converged"].any()
    assert "Table 3" in render_html(result, ReportMeta(title="Pilot", seed=1))
