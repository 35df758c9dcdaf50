"""The analysis report: Tables 1-3, the CLMM and agreement tables and Fig. 1, as HTML and as PDF.

Both formats are built from one list of `ReportTable`s and the same matplotlib figures, so what a reader of the
PDF sees is what the HTML page shows. Tables are always numbered 1-5: one that cannot be computed keeps its number
and says why. Figures use matplotlib's object API (no pyplot state), Agg rendering.
"""

from __future__ import annotations

import base64
import io
import math
import platform
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import NamedTuple

import pandas as pd
from django.template.loader import render_to_string
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from apps.analysis.stats import AnalysisResult
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
# Rows of the agreement table per PDF page, so that a page stays legible.
PDF_ROWS_PER_PAGE = 28
CATEGORY_LABELS = {
    "sex": ("Sex", {"M": "Male", "F": "Female", "O": "Other"}),
    "tumor_type": ("Tumour type", {}),
    "who_grade": ("WHO grade", {}),
    "idh_status": ("IDH status", {"mutant": "Mutant", "wildtype": "Wild type"}),
    "codeletion_1p19q": ("1p/19q codeletion", {"codeleted": "Codeleted", "intact": "Intact"}),
}


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
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return f"{value:.{digits}f}"


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
        ordered_unique(snr["sequence"]),
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


def clmm_table(result: AnalysisResult, meta: ReportMeta) -> ReportTable:
    """Every CLMM fit in full: coefficient, SE, z, P, odds ratio, variance components, convergence."""
    rows = []
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
                    "yes" if getattr(r, "converged", True) else "NO",
                ]
            )
        )
    return ReportTable(
        "clmm",
        "Table 4. Cumulative link mixed models, DL-enhanced versus conventional.",
        ["Sequence", "Item", "n", "β (DL)", "SE", "z", "P", "OR", "Var patient", "Var site", "Converged"],
        rows,
        footnote="ordered(score) ~ version + reader + (1 | site) + (1 | patient), logit link, Laplace "
        "approximation; conventional and the first reader are the reference levels. β > 0: DL scored higher.",
    )


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
        low, high = r.get(f"{name}_ci_low"), r.get(f"{name}_ci_high")
        if low is None or high is None:
            return fmt_num(r[name])
        return fmt_ci(r[name], low, high)

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
        "0.61–0.80 substantial, 0.81–1.00 almost perfect.",
    )


def reader_names(result: AnalysisResult) -> list[str]:
    """The readers with scores (older results without that field: those in the agreement table)."""
    if result.readers:
        return list(result.readers)
    return sorted(set(result.kappa["reader_1"]) | set(result.kappa["reader_2"]))


def build_tables(result: AnalysisResult, meta: ReportMeta) -> list[ReportTable]:
    """Tables 1-5, always all five and in this order; one that cannot be computed says why."""
    return [
        table1(result, meta),
        table2(result, meta),
        table3(result, meta),
        clmm_table(result, meta),
        agreement_table(result, meta),
    ]


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


def figure1(result: AnalysisResult, meta: ReportMeta) -> Figure:
    """Fig. 1: the paper's SNR₁, SNR₂, CNR (when ROIs were measured) and overall image quality, mean with 95 % CI;
    a version whose ratios were all not estimable is marked "n.e."."""
    means = result.means
    item = "overall_quality" if "overall_quality" in set(means["item"]) else ordered_unique(means["item"])[0]
    panels = []
    if result.snr is not None and not result.snr.empty:
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
                (ordered_unique(block["sequence"]), values, MEASURE_LABELS.get(measure, measure), "ratio", missing)
            )
    block = means[means["item"] == item]
    values = {(r.sequence, r.version): (r.mean, r.ci_low, r.ci_high) for r in block.itertuples()}
    panels.append((ordered_unique(block["sequence"]), values, meta.item(item), "mean score (1–5)", set()))
    fig = Figure(figsize=(max(3.4 * len(panels), 5.0), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for letter, ax, (sequences, vals, title, ylabel, missing) in zip("ABCD", axes, panels, strict=False):
        _bar_panel(ax, sequences, vals, meta, f"{letter}  {title}", ylabel, missing)
    axes[-1].set_ylim(1, 5.3)
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def figure2(result: AnalysisResult, meta: ReportMeta) -> Figure:
    """Fig. 2: every item's mean with 95 % CI, one panel per sequence, conventional against DL."""
    means = result.means
    sequences = ordered_unique(means["sequence"])
    items = ordered_unique(means["item"])
    fig = Figure(figsize=(3.4 * len(sequences), 0.35 * len(items) + 1.6), layout="constrained")
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
        ax.set_xlim(1, 5)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(range(len(items)), [meta.item(i) for i in items])
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7, loc="lower left")
    return fig


def png_data_uri(fig: Figure) -> str:
    """A PNG data URI: nothing from the data ends up as markup in the page."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
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
    text.append("No adjustment for multiple testing was made. " f"Software: {software}.")
    return text


def report_context(result: AnalysisResult, meta: ReportMeta) -> dict:
    """Everything the template and the PDF show."""
    if result.table1_summary is not None:
        patients = _patient_count(result.table1_summary)
    else:
        patients = result.scored_patients or None
    return {
        "meta": meta,
        "tables": build_tables(result, meta),
        "methods": methods_text(result, meta),
        "figures": [
            ("Fig. 1. Conventional and DL-enhanced images: mean with 95 % confidence interval.", figure1(result, meta)),
            ("Fig. 2. Mean score with 95 % confidence interval of every item.", figure2(result, meta)),
        ],
        "counts": {
            "scores": int(result.means["n"].sum()),
            "readers": len(reader_names(result)),
            "patients": patients,
            "images with ROIs": None if result.snr is None else _images_measured(result.snr),
        },
        "timings": result.timings,
    }


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
    context["figures"] = [(caption, png_data_uri(fig)) for caption, fig in context["figures"]]
    return render_to_string("analysis/report.html", {**context, **extra})


def _text_page(pdf: PdfPages, title: str, paragraphs: list[str]) -> None:
    fig = Figure(figsize=(11.69, 8.27))
    fig.text(0.06, 0.93, title, fontsize=16, weight="bold", va="top")
    body = "\n\n".join(textwrap.fill(p, 130) for p in paragraphs)
    fig.text(0.06, 0.86, body, fontsize=9, va="top", family="DejaVu Sans")
    pdf.savefig(fig)


def _table_pages(pdf: PdfPages, table: ReportTable) -> None:
    """A table drawn with matplotlib, split over pages of `PDF_ROWS_PER_PAGE` rows; one that cannot be computed
    is its caption and the reason."""
    if table.unavailable:
        fig = Figure(figsize=(11.69, 8.27))
        fig.text(0.04, 0.95, table.caption, fontsize=12, weight="bold", va="top")
        fig.text(0.04, 0.90, textwrap.fill(table.unavailable, 150), fontsize=9, va="top")
        pdf.savefig(fig)
        return
    chunks = [table.rows[i : i + PDF_ROWS_PER_PAGE] for i in range(0, max(len(table.rows), 1), PDF_ROWS_PER_PAGE)]
    for page, rows in enumerate(chunks, start=1):
        fig = Figure(figsize=(11.69, 8.27))
        caption = table.caption if len(chunks) == 1 else f"{table.caption} (page {page} of {len(chunks)})"
        fig.text(0.04, 0.95, caption, fontsize=12, weight="bold", va="top")
        ax = fig.add_axes((0.04, 0.12, 0.92, 0.78))
        ax.axis("off")
        header = list(table.columns)
        if table.spans and any(label for label, _ in table.spans):
            labels = [label for label, width in table.spans for label in [label] + [""] * (width - 1)]
            header = [f"{s}\n{c}" if s else c for s, c in zip(labels, header, strict=True)]
        cell_text = [r.cells for r in rows] or [["(no rows)"] + [""] * (len(header) - 1)]
        drawn = ax.table(cellText=cell_text, colLabels=header, loc="upper center", cellLoc="left")
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(7)
        drawn.auto_set_column_width(list(range(len(header))))
        for (row, _col), cell in drawn.get_celld().items():
            if row == 0:
                cell.set_height(cell.get_height() * 2)
                cell.set_text_props(weight="bold")
            elif rows and rows[row - 1].section:
                cell.set_text_props(weight="bold")
        if table.footnote:
            # Anchored at the bottom so that a long footnote (Table 2's) grows upwards into the free space.
            fig.text(0.04, 0.03, textwrap.fill(table.footnote, 170), fontsize=7, va="bottom")
        pdf.savefig(fig)


def render_pdf(result: AnalysisResult, meta: ReportMeta) -> bytes:
    """The same report as a PDF: a methods page, one or more pages per table, then the figures."""
    context = report_context(result, meta)
    buffer = io.BytesIO()
    with PdfPages(buffer) as pdf:
        header = [
            f"Generated {meta.date:%Y-%m-%d %H:%M} UTC."
            + (f" Randomisation seed: {meta.seed}." if meta.seed is not None else ""),
            "Counts: " + ", ".join(f"{k} {v}" for k, v in context["counts"].items() if v is not None) + ".",
            *meta.notes,
        ]
        _text_page(pdf, meta.title, header + context["methods"])
        for table in context["tables"]:
            _table_pages(pdf, table)
        for caption, fig in context["figures"]:
            fig.suptitle(caption, fontsize=10, x=0.01, ha="left")
            pdf.savefig(fig)
        info = pdf.infodict()
        info["Title"] = meta.title
        info["Creator"] = "readerstudy"
    return buffer.getvalue()
