"""The analysis report: HTML with Tables 1-8 and the figures; a PDF; escaping of hostile data."""

from __future__ import annotations

import re

import pytest

from apps.analysis.report import ReportMeta, fmt_p, render_html, render_pdf, software_versions
from apps.analysis.stats import run_analysis
from tests.analysis.synthetic import small_study


@pytest.fixture(scope="module")
def result():
    scores, patients, rois = small_study()
    return run_analysis(scores, patients, rois)


@pytest.fixture(scope="module")
def html(result) -> str:
    return render_html(result, ReportMeta(title="Glioma DL <b>study</b>", seed=12345))


def test_html_has_every_table_and_the_figures(html: str) -> None:
    for caption in ("Table 1. Patient characteristics", "Table 2. SNR and CNR", "Table 3. Qualitative scores",
                    "Cumulative link mixed models", "Inter-reader agreement"):
        assert caption in html
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', html)) == 2
    assert html.count("<table") >= 6


def test_html_shows_what_a_methods_section_needs(html: str) -> None:
    assert "Randomisation seed" in html and "12345" in html
    for name in ("python", "numpy", "scipy", "pandas", "django", "torch", "pydicom"):
        assert f"{name} " in html
    assert "Laplace" in html and "Kruskal" in html and "Wilcoxon" in html


def test_html_is_escaped(html: str) -> None:
    assert "<b>study</b>" not in html
    assert "Glioma DL &lt;b&gt;study&lt;/b&gt;" in html


def test_table3_cells_match_the_means(result, html: str) -> None:
    row = result.means.iloc[0]
    assert f"{row['mean']:.2f} ({row['ci_low']:.2f}, {row['ci_high']:.2f})" in html


def test_hostile_labels_from_a_csv_are_escaped() -> None:
    scores, _, _ = small_study(patients_per_site=4)
    scores["item"] = scores["item"].replace("noise", '<script>alert("x")</script>')
    page = render_html(run_analysis(scores), ReportMeta(title="t"))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_pdf(result) -> None:
    pdf = render_pdf(result, ReportMeta(title="Glioma DL study", seed=1))
    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 6 or pdf.count(b"/Page") >= 6


def test_report_without_patients_or_rois_keeps_tables_1_and_2_and_says_why() -> None:
    """Tables stay numbered 1-8 (the paper's numbers): one without its data says so instead of disappearing."""
    scores, _, _ = small_study(patients_per_site=4)
    page = render_html(run_analysis(scores), ReportMeta(title="t"))
    assert [int(n) for n in re.findall(r"Table (\d)\. ", page)] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "Not computed: no patient characteristics were given" in page
    assert "Not computed: no ROIs were drawn" in page


def test_software_versions_do_not_import_torch() -> None:
    import sys

    versions = software_versions()
    assert set(versions) >= {"python", "numpy", "scipy", "pandas", "django", "torch", "pydicom"}
    assert "torch" not in sys.modules or versions["torch"]


@pytest.mark.parametrize(("p", "text"), [(0.0004, "< 0.001"), (0.0521, "0.052"), (float("nan"), "NA")])
def test_p_values_as_the_paper_writes_them(p: float, text: str) -> None:
    assert fmt_p(p) == text
