"""The whole analysis of a reader study from CSV-shaped tables, and its CSV outputs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .agreement import reader_agreement
from .blinding import blinding_table
from .clmm import CLMM_COLUMNS, SESSION_COLUMNS, clmm_table
from .descriptive import score_means
from .paired import PAIRED_COLUMNS, paired_table
from .planned import PlanSpec, primary_analysis
from .snr import snr_table
from .table1 import table1_summary, table1_tests
from .validation import validate_patients, validate_rois, validate_scores

MEANS_COLUMNS = ["sequence", "item", "version", "n", "mean", "ci_low", "ci_high"]
KAPPA_COLUMNS = [
    "sequence",
    "item",
    "version",
    "reader_1",
    "reader_2",
    "n",
    "kappa_linear",
    "kappa_quadratic",
    "percent_agreement",
]
TABLE1_TEST_COLUMNS = ["variable", "test", "statistic", "df", "p"]


@dataclass
class AnalysisResult:
    """Every table of the report; ``None`` where the input it needs was not given."""

    means: pd.DataFrame
    clmm: pd.DataFrame
    kappa: pd.DataFrame
    table1_tests: pd.DataFrame | None = None
    table1_summary: pd.DataFrame | None = None
    snr: pd.DataFrame | None = None
    # Wilcoxon signed-rank on case means and VGC area per sequence x item (``paired.PAIRED_DETAIL_COLUMNS``).
    paired: pd.DataFrame | None = None
    # The locked analysis plan and its primary analysis (``planned.PRIMARY_COLUMNS``); None without a plan.
    plan: PlanSpec | None = None
    primary: pd.DataFrame | None = None
    # Readers' guesses of the DL image, per reader and arm with Bang's index (``blinding.BLINDING_COLUMNS``); None
    # when the study did not ask.
    blinding: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # Who and what was scored: the readers with at least one score, and the patients scored.
    readers: list[str] = field(default_factory=list)
    scored_patients: int = 0


def run_analysis(
    scores_df: pd.DataFrame,
    patients_df: pd.DataFrame | None = None,
    rois_df: pd.DataFrame | None = None,
    plan: PlanSpec | None = None,
    guesses: pd.DataFrame | None = None,
    session_effect: bool = False,
) -> AnalysisResult:
    """Validate the inputs and compute Tables 1-3, the CLMMs, the agreement table and the paired tests.

    ``scores_df`` needs the columns of ``validation.SCORE_COLUMNS`` (extra columns are ignored);
    ``patients_df`` and ``rois_df`` are optional. With a locked analysis ``plan``, its primary analysis is
    run too, and when the plan's test is Wilcoxon, Table 6's Holm adjustment is across the plan's comparisons
    (otherwise across all of them). ``guesses`` (``reader``, ``arm``, ``outcome``: one row per blinding question
    asked) gives the blinding-integrity table. With ``session_effect`` (or a plan that names it) the CLMMs take the
    reading session as a fixed effect (the order effect of a study read in sessions; ``scores_df`` then needs a
    ``session`` column). Raises ValueError on malformed input.
    """
    timings: dict[str, float] = {}

    def timed(stage: str, func, *args):
        start = time.perf_counter()
        value = func(*args)
        timings[stage] = time.perf_counter() - start
        return value

    scores = timed("validate", validate_scores, scores_df)
    result = AnalysisResult(
        means=timed("means", score_means, scores),
        clmm=timed("clmm", clmm_table, scores, "exact", session_effect or bool(plan and plan.session_effect)),
        kappa=timed("kappa", reader_agreement, scores),
        paired=timed("paired", paired_table, scores, plan.comparisons if plan and plan.test == "wilcoxon" else None),
        timings=timings,
        readers=sorted(scores["reader"].unique()),
        scored_patients=int(scores["patient_id"].nunique()),
    )
    if plan is not None:
        result.plan = plan
        result.primary = timed("primary", primary_analysis, scores, result.clmm, plan)
    if guesses is not None:
        result.blinding = timed("blinding", blinding_table, guesses)
    if patients_df is not None:
        patients = validate_patients(patients_df)
        result.table1_tests = timed("table1", table1_tests, patients)
        result.table1_summary = table1_summary(patients)
    if rois_df is not None:
        result.snr = timed("snr", snr_table, validate_rois(rois_df))
    return result


def _r_value(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "NA"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.15g}"
    text = str(value).replace('"', '""')
    return f'"{text}"'


def write_r_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a CSV the way R's ``write.csv(row.names = FALSE)`` does: quoted strings, bare numbers, NA."""
    lines = [",".join(_r_value(str(c)) for c in df.columns)]
    for row in df.itertuples(index=False, name=None):
        lines.append(",".join(_r_value(v.item() if hasattr(v, "item") else v) for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_outputs(result: AnalysisResult, out_dir: str | Path) -> list[Path]:
    """Write the reference-format CSVs (``means.csv``, ``clmm.csv``, ``kappa.csv``, ``table1_tests.csv``,
    ``paired.csv``)
    and the extra tables of the report; return the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables: list[tuple[str, pd.DataFrame | None]] = [
        ("means.csv", result.means[MEANS_COLUMNS]),
        ("clmm.csv", result.clmm[[*CLMM_COLUMNS, *(c for c in SESSION_COLUMNS if c in result.clmm.columns)]]),
        ("kappa.csv", result.kappa[KAPPA_COLUMNS]),
        ("kappa_detail.csv", result.kappa),
        ("paired.csv", None if result.paired is None else result.paired[PAIRED_COLUMNS]),
        ("paired_detail.csv", result.paired),
        ("primary.csv", result.primary),
        ("blinding.csv", result.blinding),
        (
            "table1_tests.csv",
            None if result.table1_tests is None else result.table1_tests[TABLE1_TEST_COLUMNS],
        ),
        ("table1_summary.csv", result.table1_summary),
        ("snr.csv", result.snr),
    ]
    written = []
    for name, table in tables:
        if table is not None:
            path = out / name
            write_r_csv(table, path)
            written.append(path)
    return written
