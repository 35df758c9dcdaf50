"""Parity with R (``ordinal::clmm``, ``vcd::Kappa``, ``shapiro.test``, ``kruskal.test``, ``chisq.test``,
``wilcox.test``).

Each reference file ``ref_X.csv`` is compared with the ``X.csv`` the analysis writes, column by
column, within the tolerances of the reference README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXACT_TOL = 1e-6
pytestmark = pytest.mark.slow  # one full analysis of the reference study, about 5-10 s


def _load_pair(reference_dir: Path, written_outputs: Path, name: str, keys: list[str]) -> pd.DataFrame:
    ref = pd.read_csv(reference_dir / f"ref_{name}.csv")
    ours = pd.read_csv(written_outputs / f"{name}.csv")
    assert list(ours.columns) == list(ref.columns), f"{name}.csv columns differ from the reference"
    assert len(ours) == len(ref), f"{name}.csv has {len(ours)} rows, reference {len(ref)}"
    merged = ref.merge(ours, on=keys, how="outer", suffixes=("_ref", ""), indicator=True)
    unmatched = merged[merged["_merge"] != "both"]
    assert unmatched.empty, f"{name}.csv rows without a partner:\n{unmatched[keys]}"
    return merged


def _assert_close(merged: pd.DataFrame, column: str, tol: float) -> None:
    ref, ours = merged[f"{column}_ref"].astype(float), merged[column].astype(float)
    both_na = ref.isna() & ours.isna()
    diff = (ref - ours).abs().where(~both_na, 0.0)
    assert not diff.isna().any(), f"{column}: NA in one file only"
    assert diff.max() <= tol, f"{column}: max abs difference {diff.max():.3g} > {tol}"


@pytest.mark.parametrize("column", ["n", "mean", "ci_low", "ci_high"])
def test_means_match_r(reference_dir: Path, written_outputs: Path, column: str) -> None:
    merged = _load_pair(reference_dir, written_outputs, "means", ["sequence", "item", "version"])
    _assert_close(merged, column, EXACT_TOL)


@pytest.mark.parametrize("column", ["n", "kappa_linear", "kappa_quadratic", "percent_agreement"])
def test_kappa_matches_vcd(reference_dir: Path, written_outputs: Path, column: str) -> None:
    keys = ["sequence", "item", "version", "reader_1", "reader_2"]
    merged = _load_pair(reference_dir, written_outputs, "kappa", keys)
    _assert_close(merged, column, EXACT_TOL)


@pytest.mark.parametrize("column", ["statistic", "df", "p"])
def test_table1_tests_match_r(reference_dir: Path, written_outputs: Path, column: str) -> None:
    merged = _load_pair(reference_dir, written_outputs, "table1_tests", ["variable", "test"])
    _assert_close(merged, column, EXACT_TOL)


def _assert_p_close(merged: pd.DataFrame, column: str) -> None:
    """The README's p-value rule: absolute difference <= 1e-6, and relative <= 1e-4 below 1e-10."""
    ref, ours = merged[f"{column}_ref"].astype(float), merged[column].astype(float)
    assert not (ref.isna() ^ ours.isna()).any(), f"{column}: NA in one file only"
    tiny = ref < 1e-10
    assert (ref - ours).abs().max() <= EXACT_TOL, f"{column}: max abs difference {(ref - ours).abs().max():.3g}"
    rel = (ours[tiny] / ref[tiny] - 1.0).abs()
    assert rel.empty or rel.max() <= 1e-4, f"{column}: max relative difference below 1e-10 {rel.max():.3g}"


@pytest.mark.parametrize("column", ["n_cases", "median_diff", "wilcoxon_v", "vgc_auc"])
def test_paired_comparison_matches_wilcox_test(reference_dir: Path, written_outputs: Path, column: str) -> None:
    merged = _load_pair(reference_dir, written_outputs, "paired", ["sequence", "item"])
    _assert_close(merged, column, EXACT_TOL)


def test_paired_wilcoxon_p_matches_wilcox_test(reference_dir: Path, written_outputs: Path) -> None:
    merged = _load_pair(reference_dir, written_outputs, "paired", ["sequence", "item"])
    _assert_p_close(merged, "wilcoxon_p")


@pytest.fixture(scope="module")
def clmm_pair(reference_dir: Path, written_outputs: Path) -> pd.DataFrame:
    return _load_pair(reference_dir, written_outputs, "clmm", ["sequence", "item"])


def test_clmm_coefficient(clmm_pair: pd.DataFrame) -> None:
    _assert_close(clmm_pair, "coef_version_dl", 0.02)


def test_clmm_standard_error(clmm_pair: pd.DataFrame) -> None:
    rel = (clmm_pair["se"] / clmm_pair["se_ref"] - 1.0).abs()
    assert rel.max() <= 0.05, f"se: max relative difference {rel.max():.3g}"


def test_clmm_z_follows_coefficient_and_se(clmm_pair: pd.DataFrame) -> None:
    np.testing.assert_allclose(clmm_pair["z"], clmm_pair["coef_version_dl"] / clmm_pair["se"], rtol=1e-9)
    rel = (clmm_pair["z"] / clmm_pair["z_ref"] - 1.0).abs()
    assert rel.max() <= 0.05, f"z: max relative difference {rel.max():.3g}"


def test_clmm_p_value(clmm_pair: pd.DataFrame) -> None:
    both_tiny = (clmm_pair["p"] < 0.001) & (clmm_pair["p_ref"] < 0.001)
    rel = (clmm_pair["p"] / clmm_pair["p_ref"] - 1.0).abs()
    bad = clmm_pair.loc[~both_tiny & (rel > 0.10), ["sequence", "item", "p", "p_ref"]]
    assert bad.empty, f"p-values off by more than 10 %:\n{bad}"


def test_clmm_loglik(clmm_pair: pd.DataFrame) -> None:
    _assert_close(clmm_pair, "loglik", 0.5)


def test_clmm_patient_variance(clmm_pair: pd.DataFrame) -> None:
    rel = (clmm_pair["var_patient"] / clmm_pair["var_patient_ref"] - 1.0).abs()
    assert rel.max() <= 0.10, f"var_patient: max relative difference {rel.max():.3g}"


def test_clmm_site_variance(clmm_pair: pd.DataFrame) -> None:
    _assert_close(clmm_pair, "var_site", 0.05)


def test_clmm_thresholds(clmm_pair: pd.DataFrame) -> None:
    """The README sets no tolerance for thresholds; the coefficient's 0.02 is used as a sign and scale check."""
    for ref, ours in zip(clmm_pair["thresholds_ref"], clmm_pair["thresholds"], strict=True):
        np.testing.assert_allclose(
            [float(t) for t in ours.split(";")], [float(t) for t in ref.split(";")], atol=0.02
        )
