"""Table 1 with values not entered: counted as missing, left out of the statistics the way R's tests leave NA out
(``shapiro.test``, ``kruskal.test`` and ``chisq.test(table(x, site))`` drop them); IDH and 1p/19q when given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from apps.analysis.stats.table1 import table1_summary, table1_tests
from apps.analysis.stats.validation import validate_patients
from tests.analysis.synthetic import small_study


def patients(n: int = 24, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "patient_id": [f"P{k:02d}" for k in range(n)],
            "site": [("A", "B", "C")[k % 3] for k in range(n)],
            "age": rng.integers(20, 85, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
            "tumor_type": rng.choice(["glioblastoma", "astrocytoma", "oligodendroglioma"], n),
            "who_grade": rng.choice([2, 3, 4], n),
            "idh_status": rng.choice(["mutant", "wildtype"], n),
            "codeletion_1p19q": rng.choice(["codeleted", "intact"], n),
        }
    )


def summary_value(summary: pd.DataFrame, site: str, variable: str, level: str) -> float:
    hit = summary[(summary["site"] == site) & (summary["variable"] == variable) & (summary["level"] == level)]
    return float(hit["value"].iloc[0]) if not hit.empty else 0.0


def test_a_missing_age_is_valid_input_but_text_is_not() -> None:
    df = patients().astype({"age": object})
    df.loc[3, "age"] = None
    df.loc[4, "age"] = ""
    clean = validate_patients(df)
    assert clean["age"].isna().sum() == 2
    df.loc[5, "age"] = "sixty"
    with pytest.raises(ValueError, match="sixty"):
        validate_patients(df)


def test_age_tests_leave_missing_ages_out_as_r_does() -> None:
    full = patients()
    gaps = full.copy()
    gaps.loc[[2, 7], "age"] = np.nan
    ours = table1_tests(gaps).set_index(["variable", "test"])
    r_like = table1_tests(full.drop(index=[2, 7])).set_index(["variable", "test"])
    for test in ("shapiro_wilk", "kruskal_wallis"):
        assert ours.loc[("age", test), "statistic"] == pytest.approx(r_like.loc[("age", test), "statistic"], abs=1e-12)
        assert ours.loc[("age", test), "p"] == pytest.approx(r_like.loc[("age", test), "p"], abs=1e-12)


def test_chi_square_leaves_missing_categories_out_as_r_does() -> None:
    full = patients()
    gaps = full.copy()
    gaps.loc[[1, 4], "who_grade"] = np.nan
    gaps.loc[[6], "idh_status"] = "unknown"
    ours = table1_tests(gaps).set_index(["variable", "test"])
    assert ours.loc[("who_grade", "chi_square"), "statistic"] == pytest.approx(
        table1_tests(full.drop(index=[1, 4])).set_index(["variable", "test"]).loc[("who_grade", "chi_square"), "statistic"]
    )
    assert ours.loc[("idh_status", "chi_square"), "statistic"] == pytest.approx(
        table1_tests(full.drop(index=[6])).set_index(["variable", "test"]).loc[("idh_status", "chi_square"), "statistic"]
    )


def test_summary_counts_missing_values_per_site() -> None:
    df = patients()
    df.loc[[0, 3], "age"] = np.nan  # both at site A
    df.loc[[1], "idh_status"] = ""
    summary = table1_summary(df)
    assert summary_value(summary, "A", "age", "missing") == 2
    assert summary_value(summary, "B", "age", "missing") == 0
    assert summary_value(summary, "all", "age", "missing") == 2
    assert summary_value(summary, "all", "age", "mean") == pytest.approx(df["age"].mean())  # pandas skips NaN
    assert summary_value(summary, "B", "idh_status", "NA") == 1
    assert math.isfinite(summary_value(summary, "A", "age", "sd"))


def test_idh_and_1p19q_only_when_given() -> None:
    with_markers = table1_tests(patients())
    assert {"idh_status", "codeletion_1p19q"} <= set(with_markers["variable"])
    without = table1_tests(patients().drop(columns=["idh_status", "codeletion_1p19q"]))
    assert list(without["variable"]) == ["age", "age", "sex", "tumor_type", "who_grade"]


def test_grades_from_a_database_column_with_gaps_are_not_floats() -> None:
    """A column of 4, 3, None arrives as 4.0, 3.0, NaN; the table must still say grade 4, not 4.0."""
    df = patients()
    df["who_grade"] = [4.0, 3.0, np.nan] * 8
    levels = set(table1_summary(df).query("variable == 'who_grade'")["level"])
    assert levels == {"3", "4", "NA"}


def test_report_from_files_shows_table1_with_the_missing_age_counted(tmp_path) -> None:
    """analyze_scores reads a patients CSV whose age cell is empty; Table 1 is there and says how many are missing."""
    scores, patients_df, _ = small_study(patients_per_site=4)
    patients_df["idh_status"] = ["mutant", "wildtype", "unknown"] * 4
    patients_df = patients_df.astype({"age": object})
    patients_df.loc[0, "age"] = ""
    scores.to_csv(tmp_path / "scores.csv", index=False)
    patients_df.to_csv(tmp_path / "patients.csv", index=False)
    call_command("analyze_scores", f"--scores={tmp_path / 'scores.csv'}", f"--patients={tmp_path / 'patients.csv'}",
                 f"--out={tmp_path / 'out'}")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Table 1. Patient characteristics" in html and "Age missing" in html and "IDH status" in html
    summary = pd.read_csv(tmp_path / "out" / "table1_summary.csv")
    assert summary_value(summary, "all", "age", "missing") == 1
