"""The analysis report: Tables 1-3, the CLMM, agreement, paired-test, primary-analysis and blinding tables and
Figs. 1-2, as HTML and as PDF.

Both formats are built from one list of `ReportTable`s and the same matplotlib figures, so what a reader of the
PDF sees is what the HTML page shows. Tables are always numbered 1-8: one that cannot be computed keeps its number
and says why. Every PDF page is A4 landscape (the paper's Tables 2 and 3 need the width). Figures use matplotlib's
object API (no pyplot state), Agg rendering.
"""

from __future__ import annotations

import base64
import io
import math
import platform
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from typing import NamedTuple

import pandas as pd
from django.template.loader import render_to_string
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from apps.analysis.stats import AnalysisResult
from apps.analysis.stats.planned import LockedPlan
from apps.analysis.stats.power import PowerCurves
from apps.analysis.stats.snr import MIN_NOISE_PIXELS, PAPER_MEASURES
from apps.analysis.stats.table1 import MISSING
from apps.studies.models import DEFAULT_ITEMS

VERSION_LABELS = {"conventional": "Conventional", "dl": "DL-enhanced"}
VERSION_COLOURS = {"conventional": "#9aa5b1", "dl": "#2f6fde"}
# The paper's short sequence names, which fit under a bar.
SEQUENCE_LABELS = {"T2W": "T2W", "FLAIR": "T2 FLAIR", "T1W_POST": "Postcontrast T1W"}
MEASURE_LABELS = {
    "snr1": "SNR₁",
    "snr2": "SNR₂",
    "cnr": "CNR",
    "snr1_tissue": "SNR₁, tissue SD",
    "snr2_tissue": "SNR₂, tissue SD",
    "cnr_tissue": "CNR, tissue SD",
}
SOFTWARE = ("numpy", "scipy", "pandas", "matplotlib", "django", "torch", "pydicom")
CATEGORY_LABELS = {
    "sex": ("Sex", {"M": "Male", "F": "Female", "O": "Other"}),
    "tumor_type": ("Tumour type", {}),
    "who_grade": ("WHO grade", {}),
    "idh_status": ("IDH status", {"mutant": "Mutant", "wildtype": "Wild type"}),
    "codeletion_1p19q": ("1p/19q codeletion", {"codeleted": "Codeleted", "intact": "Intact"}),
}
# PDF pages: A4 landscape, in inches, with its margins; text sizes in points.
PAGE = (297 / 25.4, 210 / 25.4)
MARGIN = 15 / 25.4
CAPTION_PT = 11.0
TABLE_PT = 9.0
MIN_TABLE_PT = 7.0
FOOTNOTE_PT = 7.5
TEXT_PT = 9.5
# Height of a capital (and of a digit) of DejaVu Sans, as a fraction of the font size.
CAP_HEIGHT = 0.73


def software_versions() -> dict[str, str]:
    """Installed versions, read from package metadata so that nothing heavy (torch) gets imported."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class ReportMeta:
    """What the statistics do not know: the study, its seed, labels and the software that produced it."""

    title: str
    seed: int | None = None
    date: datetime = field(default_factory=lambda: datetime.now(UTC))
    software: dict[str, str] = field(default_factory=software_versions)
    item_labels: dict[str, str] = field(default_factory=lambda: {key: label for key, label, _ in DEFAULT_ITEMS})
    sequence_labels: dict[str, str] = field(default_factory=lambda: dict(SEQUENCE_LABELS))
    notes: list[str] = field(default_factory=list)
    # Why a table could not be computed from this study's data, by table key (e.g. "table1"); overrides the
    # report's own sentence.
    unavailable: dict[str, str] = field(default_factory=dict)
    # The study's locked analysis plan; without one, ``plan_note`` says why (none made, or not locked yet).
    plan: LockedPlan | None = None
    plan_note: str = ""
    # The study as pilot of a larger study: power curves (Fig. 3), or why they could not be computed.
    power: PowerCurves | None = None
    power_note: str = ""

    def item(self, key: str) -> str:
        return self.item_labels.get(key, key.replace("_", " ").capitalize())

    def sequence(self, key: str) -> str:
        return self.sequence_labels.get(key, key)


class Row(NamedTuple):
    cells: list[str]
    section: bool = False


@dataclass
class ReportTable:
    """A table as shown: a caption, optional spanning headers over the columns, rows of text, a footnote."""

    key: str
    caption: str
    columns: list[str]
    rows: list[Row]
    spans: list[tuple[str, int]] = field(default_factory=list)
    footnote: str = ""
    # Set when the table cannot be computed: the sentence shown instead of its rows.
    unavailable: str = ""


def unavailable_table(key: str, caption: str, reason: str, meta: ReportMeta) -> ReportTable:
    return ReportTable(key, caption, [], [], unavailable=meta.unavailable.get(key, reason))


def fmt_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "NA"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_num(value: float, digits: int = 2) -> str:
    """Fixed decimals; a value that rounds to zero is written 0.00, never -0.00."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_ci(mean: float, low: float, high: float, digits: int = 2) -> str:
    return f"{fmt_num(mean, digits)} ({fmt_num(low, digits)}, {fmt_num(high, digits)})"


def ordered_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


TABLE1_CAPTION = "Table 1. Patient characteristics by site."


def table1(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Patient characteristics by site (mean ± SD, n (%)) with the paper's tests, shaped like its Table 1.

    Missing values are counted ("Age missing", the level NA) and left out of the statistics, as R's tests do.
    """
    summary, tests = result.table1_summary, result.table1_tests
    if summary is None or tests is None:
        return unavailable_table(
            "table1",
            TABLE1_CAPTION,
            "Not computed: no patient characteristics were given (age, sex, tumour type and WHO grade per patient).",
            meta,
        )
    sites = [s for s in ordered_unique(summary["site"]) if s != "all"]
    columns_order = ["all", *sites]

    def value(site: str, variable: str, level: str) -> pd.Series | None:
        hit = summary[(summary["site"] == site) & (summary["variable"] == variable) & (summary["level"] == level)]
        return None if hit.empty else hit.iloc[0]

    def test(variable: str, name: str) -> pd.Series | None:
        hit = tests[(tests["variable"] == variable) & (tests["test"] == name)]
        return None if hit.empty else hit.iloc[0]

    def count(site: str, variable: str, level: str) -> str:
        hit = value(site, variable, level)
        return "0 (0)" if hit is None or not hit["value"] else f"{int(hit['value'])} ({fmt_num(hit['percent'], 1)})"

    header = []
    for site in columns_order:
        n = value(site, "n", "")
        label = "Total" if site == "all" else str(site)
        header.append(f"{label} (n = {int(n['value']) if n is not None else 0})")
    kruskal = test("age", "kruskal_wallis")
    age_cells = []
    for site in columns_order:
        mean, sd = value(site, "age", "mean"), value(site, "age", "sd")
        age_cells.append(
            f"{fmt_num(mean['value'], 1)} ± {fmt_num(sd['value'], 1)}"
            if mean is not None and not math.isnan(mean["value"])
            else "NA"
        )
    rows = [Row(["Age (years)", *age_cells, fmt_p(kruskal["p"]) if kruskal is not None else "NA"])]
    total_missing = value("all", "age", "missing")
    age_missing = int(total_missing["value"]) if total_missing is not None else 0
    if age_missing:
        rows.append(Row(["Age missing", *[count(site, "age", "missing") for site in columns_order], ""]))
    missing_counts = {"age": age_missing} if age_missing else {}
    for variable, (label, names) in CATEGORY_LABELS.items():
        if variable not in set(summary["variable"]):
            continue
        chi = test(variable, "chi_square")
        rows.append(Row([label, *[""] * len(columns_order), fmt_p(chi["p"]) if chi is not None else "NA"], True))
        levels = ordered_unique(summary.loc[summary["variable"] == variable, "level"])
        for level in sorted(levels, key=lambda lv: (lv == MISSING, lv)):
            rows.append(Row([level_label(variable, level, names), *[count(s, variable, level) for s in columns_order], ""]))
        na = value("all", variable, MISSING)
        if na is not None and na["value"]:
            missing_counts[label] = int(na["value"])
    shapiro = test("age", "shapiro_wilk")
    footnote = (
        "Data are mean ± standard deviation or numbers with percentages in parentheses. P values: "
        "Kruskal–Wallis test for age, Pearson chi-square test (no continuity correction) for categorical "
        "variables, among sites. NA = not available (not entered, or entered as unknown)."
    )
    if shapiro is not None and not math.isnan(shapiro["statistic"]):
        footnote += f" Shapiro–Wilk test of age: W = {shapiro['statistic']:.3f}, P = {fmt_p(shapiro['p'])}."
    if missing_counts:
        total = value("all", "n", "")
        n_total = int(total["value"]) if total is not None else 0
        listed = "; ".join(f"{name} {k} of {n_total}" for name, k in missing_counts.items())
        footnote += (
            f" Missing values: {listed}; they are counted in the table and left out of the mean, SD and tests."
        )
    return ReportTable(
        "table1",
        TABLE1_CAPTION,
        ["Characteristic", *header, "P value"],
        rows,
        footnote=footnote,
    )


def level_label(variable: str, level: str, names: dict[str, str] | None = None) -> str:
    if level in {"", "nan", "NA", "None"}:
        return "NA"
    if names and level in names:
        return names[level]
    if variable == "who_grade":
        return f"Grade {level}"
    return level.replace("_", " ")


def by_sequence_table(
    key: str,
    caption: str,
    first_column: str,
    row_keys: list[str],
    row_label,
    sequences: list[str],
    cell,
    meta: ReportMeta,
    footnote: str,
) -> ReportTable:
    """The paper's layout for Tables 2 and 3: one row per measure, Conventional | DL | P under each sequence."""
    columns = [first_column]
    spans = [("", 1)]
    for sequence in sequences:
        columns += ["Conventional", "DL-enhanced", "P value"]
        spans.append((meta.sequence(sequence), 3))
    rows = [Row([row_label(row), *[c for seq in sequences for c in cell(seq, row)]]) for row in row_keys]
    return ReportTable(key, caption, columns, rows, spans=spans, footnote=footnote)


def snr_cell(r: pd.Series, version: str) -> str:
    """Mean (95 % CI) of the estimable values, "n.e." when none was, and how many were left out."""
    skipped = int(r[f"n_not_estimable_{version}"])
    if r[f"n_{version}"] == 0 and skipped:
        return "n.e."
    text = fmt_ci(r[f"mean_{version}"], r[f"ci_low_{version}"], r[f"ci_high_{version}"], 1)
    return f"{text} [{skipped} n.e.]" if skipped else text


TABLE2_CAPTION = "Table 2. SNR and CNR of conventional and DL-enhanced images."


def sequence_order(result: AnalysisResult, sequences: Iterable[str]) -> list[str]:
    """The given sequences in the order of the means (see `in_report_order`), so that every table and panel
    agrees."""
    known = ordered_unique(result.means["sequence"])
    given = ordered_unique(sequences)
    return [s for s in known if s in given] + [s for s in given if s not in known]


def in_report_order(result: AnalysisResult, meta: ReportMeta) -> AnalysisResult:
    """The result with its tables' rows in the report's order: sequences as the paper lists them (T2W, T2 FLAIR,
    postcontrast T1W: the order of `meta.sequence_labels`) and items in the study's order (`meta.item_labels`),
    others after them as they come. The analysis itself orders by first appearance in the scores, which for a
    study is whichever image was read first."""

    def ranked(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None or frame.empty:
            return frame
        keys = [k for k, labels in (("sequence", meta.sequence_labels), ("item", meta.item_labels))
                if k in frame.columns and labels]
        if not keys:
            return frame
        ranks = pd.DataFrame(index=frame.index)
        for key in keys:
            labels = meta.sequence_labels if key == "sequence" else meta.item_labels
            order = {value: i for i, value in enumerate([*labels, *(v for v in pd.unique(frame[key]) if v not in labels)])}
            ranks[key] = frame[key].map(order)
        return frame.loc[ranks.sort_values(keys, kind="stable").index].reset_index(drop=True)

    return replace(result, means=ranked(result.means), clmm=ranked(result.clmm), kappa=ranked(result.kappa),
                   snr=ranked(result.snr), paired=ranked(result.paired))


def table2(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """The paper's SNR₁, SNR₂ and CNR, then the same with tissue SD as noise, per sequence and version with 95 % CI
    and the paired t-test, like Table 2; non-estimable values are left out and counted in the cells."""
    snr = result.snr
    if snr is None:
        return unavailable_table(
            "table2",
            TABLE2_CAPTION,
            "Not computed: no ROIs were drawn, so SNR and CNR cannot be estimated. They need the ROIs S₁, S₂ and "
            "background drawn on an image (the viewer's ROI tool, or a ROI CSV for analyze_scores).",
            meta,
        )
    if snr.empty:
        return unavailable_table(
            "table2",
            TABLE2_CAPTION,
            "Not computed: no image has all three ROIs (S₁, S₂ and background) measured, so no SNR or CNR "
            "could be calculated.",
            meta,
        )
    indexed = snr.set_index(["sequence", "measure"])

    def cell(sequence: str, measure: str) -> list[str]:
        if (sequence, measure) not in indexed.index:
            return ["NA", "NA", "NA"]
        r = indexed.loc[(sequence, measure)]
        return [snr_cell(r, "conventional"), snr_cell(r, "dl"), fmt_p(r["p_paired_t"])]

    wilcoxon = "; ".join(
        f"{meta.sequence(r.sequence)} {MEASURE_LABELS.get(r.measure, r.measure)} {fmt_p(r.p_wilcoxon)}"
        for r in snr.itertuples()
    )
    totals = snr.groupby("measure", sort=False)[
        ["n_conventional", "n_dl", "n_not_estimable_conventional", "n_not_estimable_dl"]
    ].sum()
    skipped = "; ".join(
        f"{MEASURE_LABELS.get(m, m)} {r.n_not_estimable_conventional + r.n_not_estimable_dl} of "
        f"{r.n_conventional + r.n_dl + r.n_not_estimable_conventional + r.n_not_estimable_dl}"
        for m, r in totals.iterrows()
        if r.n_not_estimable_conventional + r.n_not_estimable_dl
    )
    return by_sequence_table(
        "table2",
        TABLE2_CAPTION,
        "Measure",
        ordered_unique(snr["measure"]),
        lambda m: MEASURE_LABELS.get(m, m),
        sequence_order(result, snr["sequence"]),
        cell,
        meta,
        "Mean with 95 % confidence interval. SNR₁ or SNR₂ = mean signal in S₁ or S₂ / SD of the background; "
        "CNR = |S₁ − S₂| / SD of the background (the paper's definitions: they reward a denoiser for flattening "
        "the background). Tissue SD: SNR₁ or SNR₂ = mean / SD within the same ROI S₁ or S₂; CNR = |S₁ − S₂| / SD "
        "pooled over S₁ and S₂ (noise measured where the diagnosis is; tissue texture adds to it in both versions). "
        f"n.e. = not estimable: the noise SD was 0 (to 10⁻⁶ of the signal) or came from fewer than "
        f"{MIN_NOISE_PIXELS} pixels; such images are left out of the mean, CI and tests, and [k n.e.] says how "
        f"many. Images left out, of all measured: {skipped or 'none'}. ROI statistics from stored pixel values in "
        "the original intensity scale. P: paired t-test over images estimable in both versions. Wilcoxon "
        f"signed-rank P: {wilcoxon}.",
    )


def table3(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Mean Likert score with 95 % CI per item, sequence and version; P from the CLMM version term."""
    means = result.means.set_index(["sequence", "item", "version"])
    clmm = result.clmm.set_index(["sequence", "item"])

    def cell(sequence: str, item: str) -> list[str]:
        cells = []
        for version in ("conventional", "dl"):
            key = (sequence, item, version)
            cells.append(
                fmt_ci(means.loc[key, "mean"], means.loc[key, "ci_low"], means.loc[key, "ci_high"])
                if key in means.index
                else "NA"
            )
        cells.append(fmt_p(clmm.loc[(sequence, item), "p"]) if (sequence, item) in clmm.index else "NA")
        return cells

    return by_sequence_table(
        "table3",
        "Table 3. Qualitative scores of conventional and DL-enhanced images.",
        "Item",
        ordered_unique(result.means["item"]),
        meta.item,
        ordered_unique(result.means["sequence"]),
        cell,
        meta,
        "Mean score (1–5, higher is better) with 95 % t-interval. P: version term of a cumulative link mixed "
        "model (logit link) with version and reader as fixed effects and random intercepts for patient and site.",
    )


def plan_role(result: AnalysisResult, sequence: str, item: str, test: str) -> list[str]:
    """The "Analysis" cell of a row under a locked plan ("primary" or "exploratory"); no cell without a plan."""
    if result.plan is None:
        return []
    return ["primary" if result.plan.covers(sequence, item, test) else "exploratory"]


PLAN_COLUMN = "Analysis"


def clmm_table(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Every CLMM fit in full: coefficient, SE, z, P, odds ratio, variance components, convergence; with the reading
    session as a fixed effect, its coefficient and P too."""
    rows = []
    session = "coef_session" in result.clmm.columns
    for r in result.clmm.itertuples():
        rows.append(
            Row(
                [
                    meta.sequence(r.sequence),
                    meta.item(r.item),
                    str(int(r.n)) if hasattr(r, "n") else "",
                    fmt_num(r.coef_version_dl, 3),
                    fmt_num(r.se, 3),
                    fmt_num(r.z, 2),
                    fmt_p(r.p),
                    fmt_num(math.exp(r.coef_version_dl), 2) if not math.isnan(r.coef_version_dl) else "NA",
                    fmt_num(r.var_patient, 3),
                    fmt_num(r.var_site, 3),
                    *([fmt_num(r.coef_session, 3), fmt_p(r.p_session)] if session else []),
                    "yes" if getattr(r, "converged", True) else "NO",
                    *plan_role(result, r.sequence, r.item, "clmm"),
                ]
            )
        )
    return ReportTable(
        "clmm",
        "Table 4. Cumulative link mixed models, DL-enhanced versus conventional.",
        ["Sequence", "Item", "n", "β (DL)", "SE", "z", "P", "OR", "Var patient", "Var site",
         *(["β (session 2)", "P (session)"] if session else []), "Converged", *([PLAN_COLUMN] if result.plan else [])],
        rows,
        footnote="ordered(score) ~ version + reader" + (" + session" if session else "") + " + (1 | site) + "
        "(1 | patient), logit link, Laplace approximation; conventional and the first reader are the reference levels. "
        "β > 0: DL scored higher."
        + (" Session: the reading session as a fixed effect (order effect), session 1 the reference; β (session 2) > 0:"
           " the same images scored higher in session 2." if session else "")
        + plan_footnote(result),
    )


def kappa_cell(value: float, low: float, high: float) -> str:
    """κ with its 95 % CI; "not estimable" where the data give no interval (or no κ)."""
    if value is None or math.isnan(value):
        return "not estimable"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{fmt_num(value)} (not estimable)"
    return fmt_ci(value, low, high)


def agreement_table(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Weighted Cohen's kappa (linear, quadratic) with 95 % CI and percent agreement per reader pair."""
    kappa = result.kappa
    caption = "Table 5. Inter-reader agreement."
    if kappa.empty:
        readers = reader_names(result)
        if len(readers) < 2:
            who = f"only one reader ({readers[0]}) has" if readers else "no reader has"
            reason = f"Not computed: agreement needs two readers who scored the same images; {who} scores."
        else:
            reason = "Not computed: no image was scored by two readers."
        return unavailable_table("agreement", caption, reason, meta)

    def with_ci(r: pd.Series, name: str) -> str:
        return kappa_cell(r[name], r.get(f"{name}_ci_low"), r.get(f"{name}_ci_high"))

    rows = [
        Row(
            [
                meta.sequence(r["sequence"]),
                meta.item(r["item"]),
                VERSION_LABELS.get(r["version"], r["version"]),
                f"{r['reader_1']}–{r['reader_2']}",
                str(int(r["n"])),
                with_ci(r, "kappa_linear"),
                with_ci(r, "kappa_quadratic"),
                fmt_num(r["percent_agreement"], 1),
            ]
        )
        for _, r in kappa.iterrows()
    ]
    return ReportTable(
        "agreement",
        caption,
        ["Sequence", "Item", "Version", "Readers", "n", "κ linear (95 % CI)", "κ quadratic (95 % CI)", "% agreement"],
        rows,
        footnote="Weighted Cohen's κ over the categories 1–5 on the cases both readers scored, with asymptotic "
        "95 % confidence intervals; exact agreement in %. κ ≤ 0.20 slight, 0.21–0.40 fair, 0.41–0.60 moderate, "
        "0.61–0.80 substantial, 0.81–1.00 almost perfect. Not estimable: one reader gave every image the same "
        "score (κ is then 0 by construction) or the two readers agreed on every image (κ = 1); the asymptotic "
        "standard error is then 0 and gives no interval. κ itself is not estimable when both readers gave one "
        "and the same score throughout.",
    )


PAIRED_CAPTION = "Table 6. Paired comparison per case: Wilcoxon signed-rank test and VGC analysis."


def paired_table(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Per sequence and item: each case's mean score over its readers, DL minus conventional, tested with the
    Wilcoxon signed-rank test (Holm-adjusted across the family), and the area under the VGC curve."""
    paired = result.paired
    if paired is None or paired.empty:
        return unavailable_table("paired", PAIRED_CAPTION, "Not computed: no scores to compare.", meta)
    rows = [
        Row(
            [
                meta.sequence(r.sequence),
                meta.item(r.item),
                str(int(r.n_cases)),
                fmt_num(r.median_diff, 2),
                fmt_num(r.wilcoxon_v, 1).removesuffix(".0"),  # R prints V = 55 or V = 14752.5
                fmt_p(r.wilcoxon_p),
                fmt_p(r.wilcoxon_p_holm) if r.in_family else "—",
                fmt_num(r.vgc_auc, 3),
                *plan_role(result, r.sequence, r.item, "wilcoxon"),
            ]
        )
        for r in paired.itertuples()
    ]
    family = int(paired["family_size"].iloc[0])
    notes = "; ".join(
        f"{meta.sequence(r.sequence)} {meta.item(r.item)}: {r.note}" for r in paired.itertuples() if r.note
    )
    return ReportTable(
        "paired",
        PAIRED_CAPTION,
        ["Sequence", "Item", "Cases", "Median difference", "V", "P", "P (Holm)", "VGC AUC",
         *([PLAN_COLUMN] if result.plan else [])],
        rows,
        footnote="Each case's mean score over its readers, per version; cases scored in both versions. Median "
        "difference: DL-enhanced minus conventional. V: sum of the ranks of the positive differences; P: two-sided "
        "Wilcoxon signed-rank test, zero differences dropped, normal approximation with tie and continuity "
        f"correction (R's wilcox.test(paired = TRUE, exact = FALSE)). P (Holm): Holm-adjusted across the {family} "
        f"comparison{'' if family == 1 else 's'} tested together"
        + (", all of this table" if bool(paired["in_family"].all()) else "; — = not in that family")
        + ". VGC AUC: area under the visual grading characteristic curve over the individual scores, "
        "P(DL score > conventional score) + ½ P(tie); 0.5 = no difference, > 0.5: DL scored higher."
        + (f" Not tested: {notes}." if notes else "")
        + plan_footnote(result),
    )


def plan_footnote(result: AnalysisResult) -> str:
    """What "primary" and "exploratory" mean in a table with the plan column."""
    if result.plan is None:
        return ""
    return (" Analysis: primary = a comparison of the locked analysis plan with its planned test (its decision is "
            "in Table 7); exploratory = outside the plan.")


PRIMARY_CAPTION = "Table 7. Primary analysis of the locked analysis plan."
HYPOTHESIS_TEXT = {"superiority": "superiority", "non_inferiority": "non-inferiority"}
TEST_TEXT = {"clmm": "CLMM version term", "wilcoxon": "Wilcoxon signed-rank"}


def primary_table(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """The plan's test on the plan's comparisons: estimate, P as planned, P adjusted as planned, decision at α."""
    if result.plan is None or result.primary is None:
        return unavailable_table(
            "primary",
            PRIMARY_CAPTION,
            f"Not computed: {meta.plan_note or 'no analysis plan was locked before the study opened'}. Every "
            "analysis in this report is exploratory.",
            meta,
        )
    spec = result.plan
    rows = [
        Row(
            [
                meta.sequence(r.sequence),
                meta.item(r.item),
                TEST_TEXT[r.test],
                fmt_num(r.estimate, 3 if r.test == "clmm" else 2),
                fmt_num(r.se, 3) if r.test == "clmm" else "—",
                fmt_p(r.p),
                fmt_p(r.p_adjusted),
                r.decision,
            ]
        )
        for r in result.primary.itertuples()
    ]
    n = len(result.primary)
    if spec.test == "clmm":
        estimate = "β (DL): the CLMM's version term (log odds ratio, > 0: DL scored higher), with its SE"
        tested = ("two-sided Wald test of β = 0" if spec.hypothesis == "superiority"
                  else f"one-sided Wald test of H0 β ≤ −{spec.margin:g} (margin as a log odds ratio)")
    else:
        estimate = "median of each case's mean-score difference, DL-enhanced minus conventional"
        tested = ("two-sided Wilcoxon signed-rank test (as Table 6)" if spec.hypothesis == "superiority"
                  else f"one-sided Wilcoxon signed-rank test of H0: differences centred at ≤ −{spec.margin:g} "
                       "score points (R's wilcox.test(mu = −margin, alternative = \"greater\"))")
    adjusted = (f"Holm-adjusted across the {n} primary comparison{'' if n == 1 else 's'}"
                if spec.multiplicity == "holm" else "not adjusted (the plan names no correction)")
    return ReportTable(
        "primary",
        PRIMARY_CAPTION,
        ["Sequence", "Item", "Test", "Estimate", "SE", "P", "P (adjusted)", f"Decision at α = {spec.alpha:g}"],
        rows,
        footnote=(f"Plan locked {meta.plan.frozen_at:%Y-%m-%d %H:%M:%S} UTC, sha256 {meta.plan.sha256[:16]}…. "
                  if meta.plan else "")
        + f"Estimate: {estimate}. P: {tested}. P (adjusted): {adjusted}. Decision: the adjusted P below "
        f"α = {spec.alpha:g}"
        + (" and the sign of the effect (DL superior or inferior)" if spec.hypothesis == "superiority" else "")
        + ". Every other analysis in this report is exploratory.",
    )


BLINDING_CAPTION = "Table 8. Blinding integrity: readers' guesses of the DL-enhanced image."
ARM_TEXT = {"dl": "DL-enhanced", "conventional": "Conventional", "paired": "Pair (which panel)"}


def blinding_table(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Per reader and overall: how often the guess of the DL image was right, and Bang's blinding index."""
    table = result.blinding
    if table is None:
        return unavailable_table("blinding", BLINDING_CAPTION, "Not computed: no blinding answers were given.", meta)
    if table.empty:
        return unavailable_table(
            "blinding", BLINDING_CAPTION, "Not computed: no reader has been asked the blinding question yet.", meta
        )
    rows = [
        Row(
            [
                r.reader,
                ARM_TEXT.get(r.arm, r.arm),
                str(r.n_asked),
                str(r.n_answered),
                str(r.n_correct),
                str(r.n_incorrect),
                str(r.n_dont_know),
                fmt_num(r.percent_correct, 1),
                fmt_ci(r.bang_bi, r.bang_ci_low, r.bang_ci_high) if not math.isnan(r.bang_bi) else "NA",
            ],
            section=r.reader == "all readers",
        )
        for r in table.itertuples()
    ]
    paired = "paired" in set(table["arm"])
    return ReportTable(
        "blinding",
        BLINDING_CAPTION,
        ["Reader", "Images", "Asked", "Answered", "Right", "Wrong", "Don't know", "% right", "Bang's BI (95 % CI)"],
        rows,
        footnote=(
            "Asked once per submitted image after its scores, never shown again: "
            + ("\"Which panel do you think is DL-enhanced?\" (A, B or don't know). " if paired else
               "\"Was this image DL-enhanced?\" (yes, no or don't know); rows by the version actually shown. ")
            + "Answered: not skipped. % right: of the answers that named a version. Bang's blinding index = (right − "
            "wrong) / answered, with a Wald 95 % confidence interval: 0 = no better than chance, 1 = every answer "
            "right (blinding broken), −1 = every answer wrong; don't know counts towards 0 (Bang, Ni & Davis, "
            "Control Clin Trials 2004)."
        ),
    )


def reader_names(result: AnalysisResult) -> list[str]:
    """The readers with scores (older results without that field: those in the agreement table)."""
    if result.readers:
        return list(result.readers)
    return sorted(set(result.kappa["reader_1"]) | set(result.kappa["reader_2"]))


def build_tables(result: AnalysisResult, meta: ReportMeta) -> list[ReportTable]:
    """Tables 1-8, always all eight and in this order; one that cannot be computed says why. Under a locked
    analysis plan, a table wholly outside it says it is exploratory."""
    tables = [
        table1(result, meta),
        table2(result, meta),
        table3(result, meta),
        clmm_table(result, meta),
        agreement_table(result, meta),
        paired_table(result, meta),
        primary_table(result, meta),
        blinding_table(result, meta),
    ]
    if result.plan is not None:
        exploratory = " Exploratory: outside the locked analysis plan."
        for table in tables:
            if table.key in {"table1", "table2", "agreement", "blinding"} and not table.unavailable:
                table.footnote += exploratory
            elif table.key == "table3":
                table.footnote += (
                    " P values of the locked analysis plan's primary comparisons are primary (their decision is in "
                    "Table 7); the others are exploratory."
                    if result.plan.test == "clmm"
                    else " Exploratory: the locked analysis plan's test is the Wilcoxon signed-rank test (Table 7)."
                )
    return tables


def _bar_panel(
    ax, sequences: list[str], values: dict, meta: ReportMeta, title: str, ylabel: str, missing: set[tuple[str, str]]
) -> None:
    """Grouped bars per sequence (conventional, DL) with 95 % CI error bars; values[(seq, version)] = (m, lo, hi).

    A bar in `missing` (not estimable) is marked "n.e." so that its absence is not read as zero.
    """
    width = 0.38
    for offset, version in ((-width / 2, "conventional"), (width / 2, "dl")):
        xs, heights, errs = [], [], [[], []]
        for i, sequence in enumerate(sequences):
            mean, low, high = values.get((sequence, version), (math.nan, math.nan, math.nan))
            xs.append(i + offset)
            heights.append(mean)
            errs[0].append(0 if math.isnan(low) else mean - low)
            errs[1].append(0 if math.isnan(high) else high - mean)
            if (sequence, version) in missing:
                ax.text(i + offset, 0, "n.e.", ha="center", va="bottom", fontsize=8)
        ax.bar(xs, heights, width, yerr=errs, capsize=3, color=VERSION_COLOURS[version], label=VERSION_LABELS[version])
    ax.set_xticks(range(len(sequences)), [meta.sequence(s) for s in sequences], fontsize=8)
    ax.set_xlim(-0.6, len(sequences) - 0.4)  # room for both bars of a group even where one has no value
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)


def text_width(text: str, size: float, bold: bool = False, renderer: RendererAgg | None = None) -> float:
    """Width in points of the widest line of `text` as matplotlib draws it (DejaVu Sans, no mathtext)."""
    renderer = renderer or RendererAgg(1, 1, 72)
    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    return max(
        (renderer.get_text_width_height_descent(line, prop, ismath=False)[0] for line in text.split("\n")),
        default=0.0,
    )


def wrap_to_width(text: str, width_pt: float, size: float, bold: bool = False) -> list[str]:
    """Greedy word wrap measured with the font, so that a line never runs past `width_pt`."""
    renderer = RendererAgg(1, 1, 72)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and text_width(candidate, size, bold, renderer) > width_pt:
                lines.append(line)
                line = word
            else:
                line = candidate
            while text_width(line, size, bold, renderer) > width_pt and len(line) > 1:
                # One word wider than the line (a hash, JSON): break it where it no longer fits.
                cut = next(k for k in range(1, len(line) + 1) if text_width(line[:k], size, bold, renderer) > width_pt)
                lines.append(line[: max(cut - 1, 1)])
                line = line[max(cut - 1, 1) :]
        lines.append(line)
    return lines


def _pt(fig: Figure, x: float, y: float) -> tuple[float, float]:
    """Points from the page's lower left corner as figure fractions."""
    width, height = fig.get_size_inches()
    return x / (width * 72), y / (height * 72)


def _caption(fig: Figure, caption: str) -> float:
    """The caption at the top of an A4 page, wrapped to the text width; returns the y (points) below it."""
    width_pt = (PAGE[0] - 2 * MARGIN) * 72
    top = (PAGE[1] - MARGIN) * 72
    lines = wrap_to_width(caption, width_pt, CAPTION_PT, bold=True)
    fig.text(*_pt(fig, MARGIN * 72, top), "\n".join(lines), fontsize=CAPTION_PT, weight="bold", va="top",
             parse_math=False)
    return top - len(lines) * CAPTION_PT * 1.35 - 6


def _figure_page(caption: str | None, natural: tuple[float, float]) -> tuple[Figure, tuple[float, float]]:
    """An A4 landscape figure: the caption (when given) on top, a row for the legend under it, and the panels
    (`natural` size in inches) scaled to the rest of the page. Returns the figure and where the legend goes."""
    fig = Figure(figsize=PAGE, layout="constrained")
    top = _caption(fig, caption) / 72 if caption else PAGE[1] - MARGIN
    legend_at = (MARGIN / PAGE[0], top / PAGE[1])
    top -= 0.45  # the legend row: outside every panel, so that it never covers a value
    room_w, room_h = PAGE[0] - 2 * MARGIN, top - MARGIN
    scale = min(room_w / natural[0], room_h / natural[1], 1.6)
    w, h = natural[0] * scale, natural[1] * scale
    x0 = (PAGE[0] - w) / 2
    fig.get_layout_engine().set(rect=(x0 / PAGE[0], (top - h) / PAGE[1], w / PAGE[0], h / PAGE[1]))
    return fig, legend_at


def _legend(fig: Figure, ax, at: tuple[float, float]) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=at, ncols=len(labels), frameon=False, fontsize=9)


def figure1(result: AnalysisResult, meta: ReportMeta, caption: str | None = None) -> Figure:
    """Fig. 1: the paper's SNR₁, SNR₂, CNR (when ROIs were measured) and overall image quality, mean with 95 % CI;
    a version whose ratios were all not estimable is marked "n.e."."""
    means = result.means
    item = "overall_quality" if "overall_quality" in set(means["item"]) else ordered_unique(means["item"])[0]
    panels = []
    if _has_snr(result):
        snr = result.snr
        for measure in PAPER_MEASURES:
            block = snr[snr["measure"] == measure]
            values, missing = {}, set()
            for r in block.itertuples():
                values[(r.sequence, "conventional")] = (r.mean_conventional, r.ci_low_conventional, r.ci_high_conventional)
                values[(r.sequence, "dl")] = (r.mean_dl, r.ci_low_dl, r.ci_high_dl)
                for version in ("conventional", "dl"):
                    if getattr(r, f"n_{version}") == 0 and getattr(r, f"n_not_estimable_{version}"):
                        missing.add((r.sequence, version))
            panels.append(
                (sequence_order(result, block["sequence"]), values, MEASURE_LABELS.get(measure, measure), "ratio",
                 missing)
            )
    block = means[means["item"] == item]
    values = {(r.sequence, r.version): (r.mean, r.ci_low, r.ci_high) for r in block.itertuples()}
    panels.append((ordered_unique(block["sequence"]), values, meta.item(item), "mean score (1–5)", set()))
    rows, cols = (1, len(panels)) if len(panels) < 4 else (2, math.ceil(len(panels) / 2))
    fig, legend_at = _figure_page(caption, (4.4 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.remove()
    for letter, ax, (sequences, vals, title, ylabel, missing) in zip("ABCDEFGH", axes, panels, strict=False):
        _bar_panel(ax, sequences, vals, meta, f"{letter}  {title}", ylabel, missing)
    axes[len(panels) - 1].set_ylim(1, 5.3)
    _legend(fig, axes[0], legend_at)
    return fig


def figure2(result: AnalysisResult, meta: ReportMeta, caption: str | None = None) -> Figure:
    """Fig. 2: every item's mean with 95 % CI, one panel per sequence, conventional against DL."""
    means = result.means
    sequences = ordered_unique(means["sequence"])
    items = ordered_unique(means["item"])
    fig, legend_at = _figure_page(caption, (1.9 + 3.2 * len(sequences), 1.2 + 0.8 * len(items)))
    axes = fig.subplots(1, len(sequences), sharey=True, squeeze=False)[0]
    for ax, sequence in zip(axes, sequences, strict=True):
        for shift, version in ((-0.15, "conventional"), (0.15, "dl")):
            block = means[(means["sequence"] == sequence) & (means["version"] == version)].set_index("item")
            block = block.reindex(items)
            ys = [i + shift for i in range(len(items))]
            ax.errorbar(
                block["mean"],
                ys,
                xerr=[block["mean"] - block["ci_low"], block["ci_high"] - block["mean"]],
                fmt="o",
                ms=4,
                capsize=2,
                color=VERSION_COLOURS[version],
                label=VERSION_LABELS[version],
            )
        ax.set_title(meta.sequence(sequence), fontsize=10)
        ax.set_xlim(0.75, 5.25)  # a mean or CI end at 1 or 5 is drawn whole, not under the frame
        ax.set_xticks([1, 2, 3, 4, 5])
        ax.set_xlabel("mean score (1–5)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes[0].set_yticks(range(len(items)), [meta.item(i) for i in items])
    axes[0].set_ylim(len(items) - 0.5, -0.5)  # first item on top, half a row of room above and below
    _legend(fig, axes[0], legend_at)
    return fig


READER_COLOURS = ("#2f6fde", "#d9822b", "#3c9d5d", "#9b59b6", "#c0392b", "#7f8c8d")


def power_description(curves: PowerCurves) -> str:
    """One sentence: the planned test, the assumed effect and the simulation count behind the curves."""
    spec, grid = curves.spec, curves.grid
    hypothesis = "superiority" if spec.hypothesis == "superiority" else f"non-inferiority, margin {spec.margin:g}"
    effect = "the pilot's DL effect" if grid.effect is None else f"a DL effect of {grid.effect:g} (log odds ratio)"
    comparisons = ", ".join(f"{s} {i}" for s, i in spec.comparisons)
    return (
        f"{TEST_TEXT[spec.test]} test ({hypothesis}, α = {spec.alpha:g}"
        + (", Holm" if spec.multiplicity == "holm" and len(spec.comparisons) > 1 else "")
        + f") of {comparisons}, under {effect}; {grid.n_studies} simulated studies per design"
        + ("; power: every primary comparison rejects" if len(spec.comparisons) > 1 else "")
        + "; error bars ±1.96 Monte-Carlo SE."
    )


def draw_power_curves(fig: Figure, curves: PowerCurves) -> Figure:
    """Power against cases, one line per reader count, one panel per mode and readers per case, with ±1.96
    Monte-Carlo SE error bars and the 80 % line."""
    table = curves.table
    panels = list(dict.fromkeys(zip(table["mode"], table["readers_per_case"], strict=True)))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (mode, per_case) in zip(axes, panels, strict=True):
        block = table[(table["mode"] == mode) & (table["readers_per_case"] == per_case)]
        for colour, (readers, line) in zip(READER_COLOURS * 10, block.groupby("n_readers"), strict=False):
            line = line.sort_values("n_cases")
            ax.errorbar(line["n_cases"], line["power"], yerr=1.96 * line["mc_se"], fmt="o-", ms=4, capsize=3,
                        color=colour, label=f"{readers} readers")
        ax.axhline(0.8, color="#888888", linestyle="--", linewidth=0.8)
        ax.axhline(curves.spec.alpha, color="#bbbbbb", linestyle=":", linewidth=0.8)
        ax.set_title(f"{mode} mode, {per_case} readers per case", fontsize=10, loc="left")
        ax.set_xlabel("cases", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=8)
        ax.grid(color="#eeeeee", linewidth=0.6)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("power", fontsize=8)
    return fig


def power_figure(curves: PowerCurves, title: str, described: bool = True) -> Figure:
    """The curves on their own (the power page and the command's PNG), titled; ``described``: the test and the
    simulation named under the panels (a page that says it in text leaves it out)."""
    panels = curves.table[["mode", "readers_per_case"]].drop_duplicates().shape[0]
    fig = Figure(figsize=(1.5 + 4.2 * panels, 4.2), layout="constrained")
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    draw_power_curves(fig, curves)
    if described:
        fig.supxlabel("\n".join(wrap_to_width(power_description(curves), 72 * (1.2 + 4.2 * panels), 8)), fontsize=8,
                      x=0.01, ha="left", parse_math=False)
    return fig


def figure3(curves: PowerCurves, caption: str | None = None) -> Figure:
    """Fig. 3: the study as the pilot of a larger one."""
    panels = curves.table[["mode", "readers_per_case"]].drop_duplicates().shape[0]
    fig, _ = _figure_page(caption, (1.0 + 4.2 * panels, 3.4))
    return draw_power_curves(fig, curves)


def png_data_uri(fig: Figure) -> str:
    """A PNG data URI: nothing from the data ends up as markup in the page."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def methods_text(result: AnalysisResult, meta: ReportMeta) -> list[str]:
    """Paragraphs for a methods section, filled in with this analysis' design and software."""
    means = result.means
    sequences = ", ".join(meta.sequence(s) for s in ordered_unique(means["sequence"]))
    readers = len(reader_names(result))
    software = ", ".join(f"{name} {version}" for name, version in meta.software.items())
    text = [
        f"Images of {sequences} were scored in conventional and DL-enhanced versions on "
        f"{means['item'].nunique()} five-point Likert items (higher is better) by {readers} "
        f"reader{'' if readers == 1 else 's'}. "
        "Scores are summarised as means with 95 % t-intervals. For each sequence and item, a cumulative link "
        "mixed model with a logit link was fitted with "
        + ("version and reader as fixed effects" if readers > 1 else "version as fixed effect (one reader)")
        + " and random intercepts for patient and site (Laplace approximation; validated against R "
        "ordinal::clmm); the P value of the version term is reported. "
        + (
            "Inter-reader agreement was assessed with linearly and quadratically weighted Cohen's κ and percent "
            "agreement for each reader pair."
            if readers > 1
            else "Inter-reader agreement needs two readers and was not assessed."
        ),
    ]
    if result.table1_tests is not None:
        text.append(
            "Patient characteristics were compared among sites with the Kruskal–Wallis test (continuous) and the "
            "Pearson chi-square test (categorical); normality was assessed with the Shapiro–Wilk test."
        )
    if result.snr is not None:
        text.append(
            "SNR and CNR were computed from elliptical ROIs (S₁, S₂ and background) drawn once and applied at "
            "identical pixel coordinates to both versions; ROI statistics come from the stored pixel values in "
            "the original intensity scale. Besides the paper's definitions (noise = SD of the background), SNR "
            "and CNR were computed with the SD within the tissue ROIs as noise, which a denoiser cannot inflate by "
            "flattening the background. A ratio whose noise SD was 0 or came from fewer than "
            f"{MIN_NOISE_PIXELS} pixels was not estimable and left out. Versions were compared with the paired "
            "t-test and the Wilcoxon signed-rank test."
        )
    other = ""
    if result.paired is not None and not result.paired.empty:
        other = "other "
        family = int(result.paired["family_size"].iloc[0])
        text.append(
            "For each sequence and item, each case's mean score over its readers was compared between versions "
            "with the Wilcoxon signed-rank test (normal approximation with tie and continuity correction), and the "
            "area under the visual grading characteristic (VGC) curve was computed from the individual scores. "
            f"The Wilcoxon P values were adjusted with Holm's method across the {family} comparison"
            f"{'' if family == 1 else 's'} tested together."
        )
    if result.blinding is not None and not result.blinding.empty:
        text.append(
            "After submitting an image's scores, readers were asked once which image they thought was DL-enhanced "
            "(or don't know); how often they guessed right is given per reader and overall with Bang's blinding "
            "index and its Wald 95 % confidence interval (Table 8)."
        )
    if result.plan is not None:
        text.append(
            "The primary analysis was fixed in an analysis plan locked before reading began (primary items and "
            "sequences, test, hypothesis, α and multiplicity correction; Table 7); every other analysis is "
            "exploratory."
        )
    text.append(f"No {other}adjustment for multiple testing was made. Software: {software}.")
    return text


def plan_paragraphs(result: AnalysisResult, meta: ReportMeta) -> list[str]:
    """What the report says about the analysis plan: the locked plan, its hash and time, and its JSON; or why
    there is none, in which case every analysis is exploratory."""
    locked = meta.plan
    if locked is None or result.plan is None:
        why = meta.plan_note or "no analysis plan was locked before the study opened"
        return [f"Analysis plan: {why}. Every analysis in this report is exploratory."]
    spec = locked.spec
    n = len(spec.comparisons)
    hypothesis = (
        "superiority (two-sided)"
        if spec.hypothesis == "superiority"
        else f"non-inferiority with a margin of {spec.margin:g} "
        + ("(log odds ratio)" if spec.test == "clmm" else "(score points)")
    )
    check = "it matches the stored plan" if locked.verified else "it DOES NOT MATCH the stored plan JSON below"
    return [
        f"Analysis plan: locked {locked.frozen_at:%Y-%m-%d %H:%M:%S} UTC, when the study opened for reading; "
        f"sha256 {locked.sha256} ({check}). Primary: {TEST_TEXT[spec.test]} of DL-enhanced versus conventional, "
        f"{hypothesis}, α = {spec.alpha:g}, "
        + (f"Holm across the {n} primary comparisons" if spec.multiplicity == "holm" else "no multiplicity correction")
        + f", for {', '.join(meta.item(i) for i in spec.items)} on {', '.join(meta.sequence(q) for q in spec.sequences)}"
        " (Table 7). Analyses outside the plan are marked exploratory.",
        f"The plan as hashed (canonical JSON, UTF-8): {locked.canonical}",
    ]


def report_context(result: AnalysisResult, meta: ReportMeta) -> dict:
    """Everything the template and the PDF show."""
    result = in_report_order(result, meta)
    if result.table1_summary is not None:
        patients = _patient_count(result.table1_summary)
    else:
        patients = result.scored_patients or None
    return {
        "meta": meta,
        "tables": build_tables(result, meta),
        "methods": [*methods_text(result, meta), *power_paragraphs(meta)],
        "plan": plan_paragraphs(result, meta),
        # (caption, build): build(caption) draws the figure, with its caption on the page when one is given.
        "figures": [
            (
                "Fig. 1. Conventional and DL-enhanced images: mean with 95 % confidence interval."
                + ("" if _has_snr(result) else " No SNR or CNR panels: no image has ROIs measured (see Table 2)."),
                lambda caption=None: figure1(result, meta, caption),
            ),
            (
                "Fig. 2. Mean score with 95 % confidence interval of every item.",
                lambda caption=None: figure2(result, meta, caption),
            ),
            *power_figures(meta),
        ],
        "counts": {
            "scores": int(result.means["n"].sum()),
            "readers": len(reader_names(result)),
            "patients": patients,
            "images with ROIs": None if result.snr is None else _images_measured(result.snr),
        },
        "timings": result.timings,
    }


def power_paragraphs(meta: ReportMeta) -> list[str]:
    """What the report says about power: how Fig. 3 was simulated, or why it is missing (nothing when the report
    was not asked for it, as from CSV files)."""
    if meta.power is None:
        return [f"Power: not computed. {meta.power_note}"] if meta.power_note else []
    return [
        "Power: with this study as pilot, the CLMM of each primary comparison gave the thresholds, DL effect, reader "
        "spread and patient, site and reader × case variances; complete studies were simulated for several case and "
        "reader counts and analysed with the planned test, and power is the share that rejected (Fig. 3). "
        "A finer grid and more simulations: the study's power page."
    ]


def power_figures(meta: ReportMeta) -> list[tuple[str, Callable[..., Figure]]]:
    """Fig. 3 when the study could serve as a pilot; none (its reason in the power paragraph) otherwise."""
    if meta.power is None:
        return []
    caption = (
        "Fig. 3. Power of a larger study with this study as pilot: "
        + power_description(meta.power)
        + " Dashed: 80 %; dotted: α. Exploratory: the pilot's own effect estimate is uncertain."
    )
    return [(caption, lambda caption=None: figure3(meta.power, caption))]


def _has_snr(result: AnalysisResult) -> bool:
    return result.snr is not None and not result.snr.empty


def _images_measured(snr: pd.DataFrame) -> int:
    """Images with all three ROIs in the version measured more often, estimable or not (cf. "n_paired")."""
    if snr.empty:
        return 0
    per_version = [snr[f"n_{v}"] + snr[f"n_not_estimable_{v}"] for v in ("conventional", "dl")]
    return int(max(counts.groupby(snr["sequence"]).max().sum() for counts in per_version))


def _patient_count(summary: pd.DataFrame) -> int:
    total = summary[(summary["site"] == "all") & (summary["variable"] == "n")]
    return int(total["value"].iloc[0]) if not total.empty else 0


def render_html(result: AnalysisResult, meta: ReportMeta, **extra) -> str:
    """The report page as one self-contained HTML document (figures inline), escaped by Django's templates."""
    context = report_context(result, meta)
    context["figures"] = [(caption, png_data_uri(build())) for caption, build in context["figures"]]
    return render_to_string("analysis/report.html", {**context, **extra})


def _page() -> Figure:
    return Figure(figsize=PAGE)


def _text_pages(title: str, paragraphs: list[str]) -> list[Figure]:
    """The title and paragraphs, wrapped to the text width, over as many A4 pages as they need."""
    width_pt = (PAGE[0] - 2 * MARGIN) * 72
    line_pt = TEXT_PT * 1.45
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [*wrap_to_width(paragraph, width_pt, TEXT_PT), ""]
    pages: list[Figure] = []
    while lines or not pages:
        fig = _page()
        if not pages:
            top = (PAGE[1] - MARGIN) * 72
            heading = wrap_to_width(title, width_pt, 16, bold=True)  # a study's title can be long
            fig.text(*_pt(fig, MARGIN * 72, top), "\n".join(heading), fontsize=16, weight="bold", va="top",
                     linespacing=1.2, parse_math=False)
            top -= len(heading) * 16 * 1.4 + 12
        else:
            top = _caption(fig, f"{title} (continued)")
        fit = max(int((top - MARGIN * 72) // line_pt), 1)
        chunk, lines = lines[:fit], lines[fit:]
        fig.text(*_pt(fig, MARGIN * 72, top), "\n".join(chunk), fontsize=TEXT_PT, va="top", linespacing=1.45,
                 parse_math=False)
        pages.append(fig)
    return pages


_AS_TWO_LINES = re.compile(r"^(\S+) (\(.*\).*)$")


class _Layout(NamedTuple):
    size: float
    widths: list[float]
    header: list[str]
    rows: list[Row]


def _table_layout(table: ReportTable) -> _Layout:
    """The largest font size (9 down to 7 pt) at which the table fits the text width, a "mean (CI)" cell broken
    over two lines where one line would not fit, and column widths that fill the width."""
    width_pt = (PAGE[0] - 2 * MARGIN) * 72
    renderer = RendererAgg(1, 1, 72)

    def widths_at(size: float, rows: list[Row]) -> list[float]:
        pad = 1.2 * size
        out = []
        for j, label in enumerate(table.columns):
            widest = text_width(label, size, True, renderer)
            for row in rows:
                widest = max(widest, text_width(row.cells[j], size, row.section, renderer))
            out.append(widest + pad)
        return out

    two_lines = [
        Row([r.cells[0], *(_AS_TWO_LINES.sub(r"\1\n\2", c) for c in r.cells[1:])], r.section) for r in table.rows
    ]
    sizes = [TABLE_PT - 0.5 * k for k in range(int((TABLE_PT - MIN_TABLE_PT) / 0.5) + 1)]
    choice = None
    for rows in (table.rows, two_lines):
        for size in sizes:
            widths = widths_at(size, rows)
            if sum(widths) <= width_pt:
                choice = (size, widths, rows)
                break
        if choice:
            break
    if choice is None:  # wider than the page even so: shrink the columns; a long cell may touch its neighbour
        widths = widths_at(MIN_TABLE_PT, two_lines)
        choice = (MIN_TABLE_PT, [w * width_pt / sum(widths) for w in widths], two_lines)
    size, widths, rows = choice
    extra = (width_pt - sum(widths)) / len(widths)
    return _Layout(size, [w + extra for w in widths], list(table.columns), rows)


def _table_pages(table: ReportTable) -> list[Figure]:
    """A table drawn as the paper's (rules above and below the header and at the end, spanning headers, light
    bands), filling the text width of A4 landscape pages, split over pages with the header repeated."""
    if table.unavailable:
        fig = _page()
        y = _caption(fig, table.caption)
        text = "\n".join(wrap_to_width(table.unavailable, (PAGE[0] - 2 * MARGIN) * 72, TABLE_PT + 1))
        fig.text(*_pt(fig, MARGIN * 72, y), text, fontsize=TABLE_PT + 1, va="top", parse_math=False)
        return [fig]
    layout = _table_layout(table)
    size = layout.size
    line = size * 1.25
    left = MARGIN * 72
    xs = [left + sum(layout.widths[:j]) for j in range(len(layout.widths))]
    right = xs[-1] + layout.widths[-1]
    pad = 0.6 * size
    spans = table.spans if any(label for label, _ in table.spans) else []
    spans_h = line + 0.6 * size if spans else 0.0
    header_h = max(c.count("\n") + 1 for c in layout.header) * line + 0.8 * size
    foot_lines = wrap_to_width(table.footnote, right - left, FOOTNOTE_PT) if table.footnote else []
    foot_h = len(foot_lines) * FOOTNOTE_PT * 1.3 + 8 if foot_lines else 0.0

    def row_h(row: Row) -> float:
        return max(c.count("\n") + 1 for c in row.cells) * line + 0.7 * size

    # Pages: as many rows as fit between the header and the footnote (caption height from a first page's).
    probe = _page()
    room = _caption(probe, f"{table.caption} (page 99 of 99)") - MARGIN * 72 - spans_h - header_h - foot_h - 8
    chunks: list[list[Row]] = [[]]
    used = 0.0
    for row in layout.rows:
        if chunks[-1] and used + row_h(row) > room:
            chunks.append([])
            used = 0.0
        chunks[-1].append(row)
        used += row_h(row)

    pages = []
    for number, rows in enumerate(chunks, start=1):
        fig = _page()
        caption = table.caption if len(chunks) == 1 else f"{table.caption} (page {number} of {len(chunks)})"
        y = _caption(fig, caption)

        def rule(y_pt: float, x0: float = left, x1: float = right, width: float = 0.8, fig: Figure = fig) -> None:
            fig.add_artist(Line2D([_pt(fig, x0, 0)[0], _pt(fig, x1, 0)[0]], [_pt(fig, 0, y_pt)[1]] * 2,
                                  transform=fig.transFigure, color="black", linewidth=width))

        def cell(x: float, y_mid: float, text: str, bold: bool = False, ha: str = "left", fig: Figure = fig):
            # Each line on its own baseline, the block centred on y_mid by the height of capitals: so "yes" or
            # "n.e." sit on the same line as "0.005" (centring on the drawn glyphs would lift short words).
            lines = text.split("\n")
            first = y_mid + (len(lines) - 1) * line / 2 - CAP_HEIGHT * size / 2
            for k, part in enumerate(lines):
                fig.text(*_pt(fig, x, first - k * line), part, fontsize=size, va="baseline", ha=ha,
                         weight="bold" if bold else "normal", parse_math=False)

        rule(y, width=1.2)
        if spans:
            column = 0
            for label, span in spans:
                if label:
                    x0, x1 = xs[column], xs[column + span - 1] + layout.widths[column + span - 1]
                    cell((x0 + x1) / 2, y - spans_h / 2, label, bold=True, ha="center")
                    rule(y - spans_h + 1, x0 + pad, x1 - pad, 0.6)
                column += span
            y -= spans_h
        for x, label in zip(xs, layout.header, strict=True):
            cell(x + pad, y - header_h / 2, label, bold=True)
        y -= header_h
        rule(y, width=0.8)
        for k, row in enumerate(rows):
            h = row_h(row)
            if k % 2 and not row.section:
                fig.add_artist(Rectangle(_pt(fig, left, y - h), *_pt(fig, right - left, h), transform=fig.transFigure,
                                         facecolor="#eef1f5", edgecolor="none", zorder=0))
            for x, text in zip(xs, row.cells, strict=True):
                cell(x + pad, y - h / 2, text, bold=row.section)
            y -= h
        rule(y, width=1.2)
        if foot_lines:
            fig.text(*_pt(fig, left, y - 6), "\n".join(foot_lines), fontsize=FOOTNOTE_PT, va="top",
                     linespacing=1.3, parse_math=False)
        pages.append(fig)
    return pages


def pdf_pages(result: AnalysisResult, meta: ReportMeta) -> list[Figure]:
    """Every page of the PDF, each an A4 landscape figure: title and methods, Tables 1-8, Figs. 1-2."""
    context = report_context(result, meta)
    header = [
        f"Generated {meta.date:%Y-%m-%d %H:%M} UTC."
        + (f" Randomisation seed: {meta.seed}." if meta.seed is not None else ""),
        "Counts: " + ", ".join(f"{k} {v}" for k, v in context["counts"].items() if v is not None) + ".",
        *meta.notes,
        *context["plan"],
    ]
    pages = _text_pages(meta.title, header + context["methods"])
    for table in context["tables"]:
        pages += _table_pages(table)
    pages += [build(caption) for caption, build in context["figures"]]
    return pages


def render_pdf(result: AnalysisResult, meta: ReportMeta) -> bytes:
    """The same report as a PDF: a methods page, one or more pages per table, then the figures; all A4."""
    buffer = io.BytesIO()
    with PdfPages(buffer) as pdf:
        for page in pdf_pages(result, meta):
            pdf.savefig(page)
        info = pdf.infodict()
        info["Title"] = meta.title
        info["Creator"] = "readerstudy"
    return buffer.getvalue()
