"""The report's PDF as a reader sees it: every page A4, nothing cut at the page's edge or drawn over other text,
tables as wide as the text, legends outside the data, no "−0.00" and no zero-width kappa interval.

The page checks measure what matplotlib draws (the same figures `render_pdf` saves); the PDF's own page sizes and
text are read back with pypdf."""

from __future__ import annotations

import io
import re
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from pypdf import PdfReader

from apps.analysis import report
from apps.analysis.report import ReportMeta, render_pdf
from apps.analysis.stats import run_analysis
from apps.analysis.stats.planned import PlanSpec
from tests.analysis.synthetic import small_study
from tests.analysis.world import clinical_world
from tests.factories import AdminFactory

A4_LANDSCAPE_PT = (841.89, 595.28)
# A negative zero at any precision: "-0.00", "−0.0", but not "-0.001".
NEGATIVE_ZERO = re.compile(r"[-−]0\.0+(?![0-9])")


@pytest.fixture(scope="module")
def full():
    """Patients, ROIs, three readers, a locked plan and blinding answers: every table (Table 7, the plan columns of
    Tables 4 and 6 and Table 8 included) and all four panels of Fig. 1."""
    scores, patients, rois = small_study(patients_per_site=6)
    plan = PlanSpec(("T2W",), ("overall_quality", "noise"), "clmm", "non_inferiority", 0.025, "holm", margin=0.5)
    outcomes = ["correct", "incorrect", "dont_know", "correct", "skipped"]
    guesses = pd.DataFrame(
        [(reader, arm, outcomes[k % 5]) for k, reader in enumerate(sorted(scores["reader"].unique()) * 8)
         for arm in ("dl", "conventional")],
        columns=["reader", "arm", "outcome"],
    )
    return run_analysis(scores, patients, rois, plan=plan, guesses=guesses)


@pytest.fixture(scope="module")
def scores_only():
    """Scores alone (no patients, no ROIs), as a study with nothing but reads gives them."""
    scores, _, _ = small_study(patients_per_site=4)
    return run_analysis(scores)


def degenerate_scores() -> pd.DataFrame:
    """Two readers, eight patients; on T2W noise R1 gave every image a 4 (κ = 0, its asymptotic SE exactly 0),
    on T2W overall quality both agreed on every image (κ = 1, SE 0)."""
    rng = np.random.default_rng(11)
    rows = []
    for k in range(8):
        patient = f"P{k}"
        for version in ("conventional", "dl"):
            shared = int(rng.integers(2, 6))
            for reader in ("R1", "R2"):
                for item in ("overall_quality", "noise"):
                    if item == "overall_quality":
                        score = shared
                    else:
                        score = 4 if reader == "R1" else int(rng.integers(1, 6))
                    rows.append((f"C-{patient}", patient, "AB"[k % 2], reader, "T2W", version, item, score))
    return pd.DataFrame(rows, columns=["case_id", "patient_id", "site", "reader", "sequence", "version", "item",
                                       "score"])


def pdf_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def drawn(fig: Figure):
    """Draw the page as the PDF does; returns the renderer for measuring."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def texts_of(fig: Figure, renderer) -> list[tuple[str, object]]:
    """Every visible, non-empty text on the page with its extent in display units."""
    out = []
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.figure is not None:
            out.append((text.get_text(), text.get_window_extent(renderer)))
    return out


@pytest.mark.parametrize("fixture", ["full", "scores_only"])
def test_every_page_is_a4_landscape(fixture: str, request) -> None:
    pdf = render_pdf(request.getfixturevalue(fixture), ReportMeta(title="t"))
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 11  # methods, Tables 1-8 (each at least a page), Figs. 1 and 2
    for number, page in enumerate(pages, start=1):
        size = (float(page.mediabox.width), float(page.mediabox.height))
        assert size == pytest.approx(A4_LANDSCAPE_PT, abs=0.5), f"page {number} is {size}, not A4"


@pytest.mark.parametrize("fixture", ["full", "scores_only"])
def test_no_text_runs_past_the_page_or_over_other_text(fixture: str, request) -> None:
    """The cut "…95 % confide" of Fig. 1, captions, footnotes, cells: all inside the page; on a table page no two
    texts overlap (a cramped column would)."""
    result = request.getfixturevalue(fixture)
    title = "Glioma DL enhancement versus conventional imaging, a blinded multi-site reader study " * 3
    for number, fig in enumerate(report.pdf_pages(result, ReportMeta(title=title)), start=1):
        renderer = drawn(fig)
        page = fig.bbox
        texts = texts_of(fig, renderer)
        for text, box in texts:
            assert box.x0 >= page.x0 - 0.5 and box.x1 <= page.x1 + 0.5, f"page {number}: {text!r} cut at the side"
            assert box.y0 >= page.y0 - 0.5 and box.y1 <= page.y1 + 0.5, f"page {number}: {text!r} cut at the top"
        if fig.axes:  # figure pages: matplotlib's own layout; checked by the legend test below
            continue
        for (a, box_a), (b, box_b) in combinations(texts, 2):
            assert not box_a.overlaps(box_b), f"page {number}: {a!r} runs into {b!r}"


def test_figure_captions_are_whole_in_the_pdf(full) -> None:
    text = re.sub(r"\s+", " ", " ".join(pdf_text(render_pdf(full, ReportMeta(title="t")))))
    assert "Fig. 1. Conventional and DL-enhanced images: mean with 95 % confidence interval." in text
    assert "Fig. 2. Mean score with 95 % confidence interval of every item." in text


def test_tables_fill_the_text_width(full) -> None:
    """The rules above and below each table run from the left margin to the right margin of the A4 page."""
    left, right = report.MARGIN * 72, (report.PAGE[0] - report.MARGIN) * 72
    for table in report.build_tables(full, ReportMeta(title="t")):
        fig = report._table_pages(table)[0]
        lines = [line.get_xdata() for line in fig.findobj(Line2D) if line.get_transform() == fig.transFigure]
        assert lines, table.caption
        widest = max(lines, key=lambda xs: xs[1] - xs[0])
        width_pt = fig.get_figwidth() * 72
        assert widest[0] * width_pt == pytest.approx(left, abs=0.5), table.caption
        assert widest[1] * width_pt == pytest.approx(right, abs=0.5), table.caption


def test_table4_has_room_for_its_numbers(full) -> None:
    """Table 4 (eleven columns) at a legible size, each column wider than its widest text."""
    clmm = next(t for t in report.build_tables(full, ReportMeta(title="t")) if t.key == "clmm")
    layout = report._table_layout(clmm)
    assert layout.size >= 8.5
    for j, width in enumerate(layout.widths):
        widest = max(report.text_width(cell, layout.size, False) for cell in [r.cells[j] for r in layout.rows])
        assert width >= widest + layout.size, clmm.columns[j]


@pytest.mark.parametrize("build", ["figure1", "figure2"])
def test_legends_sit_outside_the_data(full, build: str) -> None:
    fig = getattr(report, build)(full, ReportMeta(title="t"))
    renderer = drawn(fig)
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), f"{build}: the legend covers a panel"


def test_degenerate_kappa_says_not_estimable_and_no_number_is_negative_zero() -> None:
    result = run_analysis(degenerate_scores())
    kappa = result.kappa.set_index(["item", "version"])
    assert kappa.loc[("noise", "dl"), "kappa_linear"] == pytest.approx(0.0, abs=1e-12)
    pages = pdf_text(render_pdf(result, ReportMeta(title="t")))
    agreement = next(p for p in pages if "Table 5. Inter-reader agreement" in p)
    assert "not estimable" in agreement
    for low, high in re.findall(r"\((-?\d\.\d\d), (-?\d\.\d\d)\)", agreement):
        assert float(low) < float(high), f"zero-width interval ({low}, {high})"
    for number, text in enumerate(pages, start=1):
        assert not NEGATIVE_ZERO.search(text), f"page {number}: {NEGATIVE_ZERO.search(text).group()}"


@pytest.mark.django_db
def test_a_studys_pdf_from_the_admin_page_is_a4_and_says_what_the_html_says(client) -> None:
    """The issue's study: one reader, a case without age, no ROIs."""
    client.force_login(AdminFactory())
    world = clinical_world(only_first_reader=True)
    response = client.get(f"/analysis/studies/{world.study.pk}/report.pdf")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.content))
    for page in reader.pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4_LANDSCAPE_PT, abs=0.5)
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    assert "readers 1," in text and "by 1 reader." in text
    assert [int(n) for n in re.findall(r"Table (\d)\. ", text)] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "Age missing" in text and "IDH status" in text and "1p/19q codeletion" in text
    assert "no ROIs were drawn" in text
    assert not NEGATIVE_ZERO.search(text)


@pytest.mark.django_db
def test_a_studys_kappa_table_has_no_negative_zero_and_no_zero_width_interval(client) -> None:
    client.force_login(AdminFactory())
    world = clinical_world()
    html = client.get(f"/analysis/studies/{world.study.pk}/report/").content.decode("utf-8")
    agreement = re.search(r'<section id="agreement">(.*?)</section>', html, re.S).group(1)
    assert not NEGATIVE_ZERO.search(agreement)
    for low, high in re.findall(r"\((-?\d\.\d\d), (-?\d\.\d\d)\)", agreement):
        assert float(low) < float(high), f"zero-width interval ({low}, {high})"
    assert "not estimable" in agreement
