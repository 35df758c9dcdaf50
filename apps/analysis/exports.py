"""Unblinded CSV exports of a study (admins only), streamed row by row, and their adapters to the analysis.

Every export is a header and an iterator of rows of raw values; one writer formats them the same way for the
HTTP stream, the management command and the worker: UTF-8 without BOM, comma-separated, "\\n" line ends,
quotes only where needed, missing values as NA, booleans as TRUE/FALSE, times in ISO 8601 UTC. pandas'
`read_csv` and R's `read.csv` read that without options. Text cells that a spreadsheet would run as a formula
(starting with = + - @, tab or carriage return) get a leading apostrophe. Column names are documented in
README.md ("Export columns"); the long export's names are those `run_analysis` reads.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import IO

import pandas as pd

from apps.analysis.models import BlindingGuess, ExportKind, RoiMeasurement
from apps.analysis.stats.blinding import OUTCOMES as BLINDING_OUTCOMES
from apps.analysis.stats.snr import roi_ratios
from apps.imaging.models import Version
from apps.studies.models import ReaderStudy, ReadingMode, ReadingTask, Score, ScoreAudit, TaskStatus
from apps.studies.services import sources
from apps.studies.services.definition import ASSIGNMENT_COLUMNS, assignment_rows, version_orders

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000

# Column name -> type ("text", "int", "float", "bool", "time"); the order is the file's.
# The study's DL source, last in every file that has a version column (added after the others, so scripts that read
# columns by position keep working): "model" or "vendor", NAME@VERSION, the model file's sha256, the factor.
SOURCE_COLUMNS = {"dl_source": "text", "dl_model": "text", "dl_model_sha256": "text", "dl_factor": "float"}
# Reading sessions, after the source columns in every file with one row per task or score: the task's session (1, or
# 1-2 in a study read in two sessions) and which version of the image the reader was given first
# (conventional_first or dl_first; NA in paired mode, where both are shown at once).
ORDER_COLUMNS = {"session": "int", "version_order": "text"}
LONG_COLUMNS = {
    "study_id": "int",
    "reader": "text",
    "reader_site": "text",
    "case_id": "text",
    "patient_id": "text",
    "site": "text",
    "sequence": "text",
    "version": "text",
    "panel": "text",
    "item": "text",
    "score": "int",
    "calibration": "bool",
    "task_position": "int",
    "task_status": "text",
    "created_at": "time",
    "updated_at": "time",
    "task_submitted_at": "time",
    "seconds_on_task": "float",
    "revision_seconds": "float",
    **SOURCE_COLUMNS,
    **ORDER_COLUMNS,
}
WIDE_COLUMNS = {
    "study_id": "int",
    "reader": "text",
    "reader_site": "text",
    "task_position": "int",
    "case_id": "text",
    "patient_id": "text",
    "site": "text",
    "sequence": "text",
    "version": "text",
    "left_version": "text",
    "right_version": "text",
    "calibration": "bool",
    "task_status": "text",
    "started_at": "time",
    "submitted_at": "time",
    "seconds_on_task": "float",
    "revision_seconds": "float",
}
PATIENT_COLUMNS = {
    "study_id": "int",
    "patient_id": "text",
    "case_id": "text",
    "site": "text",
    "age": "int",
    "sex": "text",
    "tumor_type": "text",
    "who_grade": "int",
    "idh_status": "text",
    "codeletion_1p19q": "text",
    "calibration": "bool",
}
ROI_MEASURED_COLUMNS = {
    "study_id": "int",
    "case_id": "text",
    "site": "text",
    "sequence": "text",
    "version": "text",
    "roi": "text",
    "mean": "float",
    "sd": "float",
    "pixel_count": "int",
    "reader": "text",
    "slice_index": "int",
    "center_row": "float",
    "center_col": "float",
    "radius_rows": "float",
    "radius_cols": "float",
    "updated_at": "time",
}
# Derived from the measured columns by `roi_ratios`: NA where not applicable or not estimable.
ROI_COLUMNS = {
    **ROI_MEASURED_COLUMNS,
    "snr": "float",
    "snr_tissue": "float",
    "cnr": "float",
    "cnr_tissue": "float",
    "not_estimable": "text",
    **SOURCE_COLUMNS,
}
SCORE_AUDIT_COLUMNS = {
    "study_id": "int",
    "reader": "text",
    "reader_site": "text",
    "task_position": "int",
    "case_id": "text",
    "patient_id": "text",
    "site": "text",
    "sequence": "text",
    "version": "text",
    "panel": "text",
    "item": "text",
    "calibration": "bool",
    "old_score": "int",
    "new_score": "int",
    "changed_at": "time",
    "changed_by": "text",
    **SOURCE_COLUMNS,
    **ORDER_COLUMNS,
}
# One row per answer to the blinding question (issue 14, item 6): what the reader was shown (conventional or dl in
# single mode; paired with the versions left and right), their answer and whether it was right, for checks beyond
# the report's Table 8.
BLINDING_COLUMNS = {
    "study_id": "int",
    "reader": "text",
    "reader_site": "text",
    "task_position": "int",
    "case_id": "text",
    "site": "text",
    "sequence": "text",
    "shown": "text",
    "version_left": "text",
    "version_right": "text",
    "answer": "text",
    "outcome": "text",
    "answered_at": "time",
    "calibration": "bool",
    **SOURCE_COLUMNS,
    "session": "int",
}
ASSIGNMENT_TYPES = {"study": "int", "position": "int", "calibration": "bool", "dl_factor": "float", "session": "int"}


def safe_text(value: str) -> str:
    """Neutralise spreadsheet formulas; the apostrophe is what spreadsheets themselves use to mean "text"."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def format_cell(value: object, kind: str) -> str:
    if value is None or value == "":
        return "NA"
    if kind == "bool":
        return "TRUE" if value else "FALSE"
    if kind == "time":
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "text":
        return safe_text(str(value))
    if kind == "float":
        return repr(float(value))
    return str(value)


class _Line:
    """A file-like object whose write returns the line, so csv.writer can feed a generator."""

    def write(self, text: str) -> str:
        return text


def csv_lines(columns: dict[str, str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The header line then one formatted line per row of raw values."""
    writer = csv.writer(_Line(), lineterminator="\n")
    kinds = list(columns.values())
    yield writer.writerow(columns)
    for row in rows:
        yield writer.writerow([format_cell(v, k) for v, k in zip(row, kinds, strict=True)])


def reader_label(pseudonym: str, username: str) -> str:
    """The reader's export label, as the assignment export writes it."""
    return pseudonym or username


def _version(version: str, left: str, right: str, panel: str) -> str:
    """A score's version: the task's in single mode, the panel's in paired mode (A is left)."""
    return version or (left if panel == "A" else right)


def long_rows(study: ReaderStudy) -> Iterator[tuple]:
    """One row per score, in reader, position, panel and item order. created_at and updated_at are the score's own
    times, stamped from one clock (apps.audit.timestamps): equal until a revision, updated_at never earlier."""
    source = sources.export_fields(study)
    scores = (
        Score.objects.filter(task__study=study)
        .order_by("task__reader__pseudonym", "task__reader__username", "task__position", "panel", "item__order")
        .values_list(
            "task__reader__pseudonym",
            "task__reader__username",
            "task__reader__institution__pseudonym",
            "task__case__code",
            "task__case__institution__pseudonym",
            "task__sequence",
            "task__version",
            "task__left_version",
            "task__right_version",
            "panel",
            "item__key",
            "value",
            "task__calibration",
            "task__position",
            "task__status",
            "created_at",
            "updated_at",
            "task__submitted_at",
            "task__seconds_on_task",
            "task__revision_seconds",
            "task__session",
            "task__reader_id",
            "task__case_id",
        )
    )
    orders = version_orders(study)
    for (pseudonym, username, reader_site, case, site, sequence, version, left, right, panel, *rest) in (
        scores.iterator(chunk_size=CHUNK)
    ):
        item, value, calibration, position, status, created, updated, submitted, seconds, revision, *task = rest
        session, reader_id, case_id = task
        yield (
            study.pk,
            reader_label(pseudonym, username),
            reader_site,
            case,
            case,
            site,
            sequence,
            _version(version, left, right, panel),
            panel,
            item,
            value,
            calibration,
            position,
            status,
            created,
            updated,
            submitted,
            seconds,
            revision,
            *source,
            session,
            orders.get((reader_id, case_id, sequence)),
        )


def item_keys(study: ReaderStudy) -> list[str]:
    return list(study.items.order_by("order", "pk").values_list("key", flat=True))


def wide_columns(study: ReaderStudy) -> dict[str, str]:
    """The fixed task columns, then one score column per item (single mode) or per item and version (paired)."""
    keys = item_keys(study)
    if study.mode == ReadingMode.PAIRED:
        scores = [f"{key}_{version}" for key in keys for version in Version.values]
    else:
        scores = keys
    return {**WIDE_COLUMNS, **dict.fromkeys(scores, "int"), **SOURCE_COLUMNS, **ORDER_COLUMNS}


def wide_rows(study: ReaderStudy) -> Iterator[tuple]:
    """One row per reading task, scores spread over the item columns (NA where not scored yet)."""
    columns = list(wide_columns(study))[len(WIDE_COLUMNS) : -len(SOURCE_COLUMNS) - len(ORDER_COLUMNS)]
    source = sources.export_fields(study)
    orders = version_orders(study)
    tasks = (
        ReadingTask.objects.filter(study=study)
        .select_related("reader__institution", "case__institution")
        .prefetch_related("scores__item")
        .order_by("reader__pseudonym", "reader__username", "position")
    )
    for task in tasks.iterator(chunk_size=CHUNK):
        values: dict[str, int] = {}
        for score in task.scores.all():
            if study.mode == ReadingMode.PAIRED:
                version = _version("", task.left_version, task.right_version, score.panel)
                values[f"{score.item.key}_{version}"] = score.value
            else:
                values[score.item.key] = score.value
        yield (
            study.pk,
            reader_label(task.reader.pseudonym, task.reader.username),
            task.reader.institution.pseudonym if task.reader.institution else "",
            task.position,
            task.case.code,
            task.case.code,
            task.case.institution.pseudonym,
            task.sequence,
            task.version,
            task.left_version,
            task.right_version,
            task.calibration,
            task.status,
            task.started_at,
            task.submitted_at,
            task.seconds_on_task,
            task.revision_seconds,
            *(values.get(c) for c in columns),
            *source,
            task.session,
            orders.get((task.reader_id, task.case_id, task.sequence)),
        )


def patient_rows(study: ReaderStudy) -> Iterator[tuple]:
    """One row per case of the study; a case is one patient of one site, so its code is the patient id."""
    calibration = set(study.calibration_cases.values_list("pk", flat=True))
    for case in study.cases.select_related("institution").order_by("code").iterator(chunk_size=CHUNK):
        yield (
            study.pk,
            case.code,
            case.code,
            case.institution.pseudonym,
            case.age,
            case.sex,
            case.tumour_type,
            case.who_grade,
            case.idh_status,
            case.codeletion_1p19q,
            case.pk in calibration,
        )


def roi_rows(study: ReaderStudy) -> Iterator[tuple]:
    """Two rows per ROI: its statistics on the conventional image, then on the DL image, each with its SNRs and its
    image's CNRs as the same reader measured that image (read whole: the ratios need the image's other ROIs)."""
    rois = RoiMeasurement.objects.filter(study=study).select_related("case__institution", "drawn_by")
    measured = [
        (
            study.pk,
            roi.case.code,
            roi.case.institution.pseudonym,
            roi.sequence,
            str(version),
            roi.label,
            mean,
            sd,
            count,
            reader_label(roi.drawn_by.pseudonym, roi.drawn_by.username),
            roi.slice_index,
            roi.center_row,
            roi.center_col,
            roi.radius_rows,
            roi.radius_cols,
            roi.updated_at,
        )
        for roi in rois.iterator(chunk_size=CHUNK)
        for version, mean, sd, count in (
            (Version.CONVENTIONAL, roi.conventional_mean, roi.conventional_sd, roi.conventional_pixels),
            (Version.DL, roi.dl_mean, roi.dl_sd, roi.dl_pixels),
        )
    ]
    if not measured:
        return
    ratios = roi_ratios(pd.DataFrame(measured, columns=list(ROI_MEASURED_COLUMNS)))
    source = sources.export_fields(study)
    for row, derived in zip(measured, ratios.itertuples(index=False, name=None), strict=True):
        yield (*row, *(None if isinstance(v, float) and math.isnan(v) else v for v in derived), *source)


def score_audit_rows(study: ReaderStudy) -> Iterator[tuple]:
    """Every change of every score, oldest first within each score: the first setting (old score NA), then each
    revision, with who made it. For monitors and for studies that analyse revisions."""
    source = sources.export_fields(study)
    changes = (
        ScoreAudit.objects.filter(score__task__study=study)
        .order_by("score__task__reader__pseudonym", "score__task__reader__username", "score__task__position",
                  "score__panel", "score__item__order", "changed_at", "pk")
        .values_list(
            "score__task__reader__pseudonym",
            "score__task__reader__username",
            "score__task__reader__institution__pseudonym",
            "score__task__position",
            "score__task__case__code",
            "score__task__case__institution__pseudonym",
            "score__task__sequence",
            "score__task__version",
            "score__task__left_version",
            "score__task__right_version",
            "score__panel",
            "score__item__key",
            "score__task__calibration",
            "old_value",
            "new_value",
            "changed_at",
            "changed_by__pseudonym",
            "changed_by__username",
            "score__task__session",
            "score__task__reader_id",
            "score__task__case_id",
        )
    )
    orders = version_orders(study)
    for (pseudonym, username, reader_site, position, case, site, sequence, version, left, right, panel, *rest) in (
        changes.iterator(chunk_size=CHUNK)
    ):
        item, calibration, old, new, changed_at, by_pseudonym, by_username, session, reader_id, case_id = rest
        yield (
            study.pk,
            reader_label(pseudonym, username),
            reader_site,
            position,
            case,
            case,
            site,
            sequence,
            _version(version, left, right, panel),
            panel,
            item,
            calibration,
            old,
            new,
            changed_at,
            reader_label(by_pseudonym or "", by_username or "") or None,
            *source,
            session,
            orders.get((reader_id, case_id, sequence)),
        )


def blinding_rows(study: ReaderStudy) -> Iterator[tuple]:
    """Every answer to the blinding question, per reader in reading order, scored as the report scores it."""
    from apps.analysis.blinding import outcome  # blinding.py takes reader_label from here

    source = sources.export_fields(study)
    guesses = (
        BlindingGuess.objects.filter(task__study=study)
        .select_related("task__case__institution", "task__reader__institution")
        .order_by("task__reader__pseudonym", "task__reader__username", "task__position")
    )
    for guess in guesses.iterator(chunk_size=CHUNK):
        task = guess.task
        shown, result = outcome(guess)
        yield (
            study.pk,
            reader_label(task.reader.pseudonym, task.reader.username),
            task.reader.institution.pseudonym if task.reader.institution else None,
            task.position,
            task.case.code,
            task.case.institution.pseudonym,
            task.sequence,
            shown,
            task.left_version or None,
            task.right_version or None,
            guess.answer,
            result,
            guess.created_at,
            task.calibration,
            *source,
            task.session,
        )


def assignment_table(study: ReaderStudy) -> Iterator[tuple]:
    for row in assignment_rows(study):
        yield tuple(row[c] for c in ASSIGNMENT_COLUMNS)


@dataclass(frozen=True)
class CsvExport:
    filename: str
    columns: Callable[[ReaderStudy], dict[str, str]]
    rows: Callable[[ReaderStudy], Iterator[tuple]]
    count: Callable[[ReaderStudy], int]


CSV_EXPORTS: dict[str, CsvExport] = {
    ExportKind.LONG: CsvExport(
        "scores_long.csv", lambda s: LONG_COLUMNS, long_rows, lambda s: Score.objects.filter(task__study=s).count()
    ),
    ExportKind.WIDE: CsvExport("scores_wide.csv", wide_columns, wide_rows, lambda s: s.tasks.count()),
    ExportKind.ASSIGNMENT: CsvExport(
        "assignment.csv",
        lambda s: {c: ASSIGNMENT_TYPES.get(c, "text") for c in ASSIGNMENT_COLUMNS},
        assignment_table,
        lambda s: s.tasks.count(),
    ),
    ExportKind.PATIENTS: CsvExport("patients.csv", lambda s: PATIENT_COLUMNS, patient_rows, lambda s: s.cases.count()),
    ExportKind.ROIS: CsvExport(
        "rois.csv", lambda s: ROI_COLUMNS, roi_rows, lambda s: 2 * RoiMeasurement.objects.filter(study=s).count()
    ),
    ExportKind.SCORE_AUDIT: CsvExport(
        "score_audit.csv", lambda s: SCORE_AUDIT_COLUMNS, score_audit_rows,
        lambda s: ScoreAudit.objects.filter(score__task__study=s).count(),
    ),
    ExportKind.BLINDING: CsvExport(
        "blinding_answers.csv", lambda s: BLINDING_COLUMNS, blinding_rows,
        lambda s: BlindingGuess.objects.filter(task__study=s).count(),
    ),
}


def export_filename(study: ReaderStudy, kind: str) -> str:
    name = CSV_EXPORTS[kind].filename if kind in CSV_EXPORTS else "report.pdf"
    return f"study{study.pk}_{name}"


def stream_csv(study: ReaderStudy, kind: str) -> Iterator[str]:
    """The export as lines of text, for a StreamingHttpResponse."""
    export = CSV_EXPORTS[kind]
    return csv_lines(export.columns(study), export.rows(study))


def write_csv(
    study: ReaderStudy, kind: str, handle: IO[str], on_progress: Callable[[int, int], None] | None = None
) -> int:
    """Write the export to an open text file; report (rows written, rows expected) every CHUNK rows."""
    total = CSV_EXPORTS[kind].count(study)
    written = -1
    for written, line in enumerate(stream_csv(study, kind)):
        handle.write(line)
        if on_progress and written and written % CHUNK == 0:
            on_progress(written, total)
    return max(written, 0)


def frame(study: ReaderStudy, kind: str) -> pd.DataFrame:
    """The export as a DataFrame of raw values (not the CSV text), for the study's analysis."""
    export = CSV_EXPORTS[kind]
    return pd.DataFrame(list(export.rows(study)), columns=list(export.columns(study)))


def _truthy(column: pd.Series) -> pd.Series:
    return column.astype(str).str.upper().isin({"TRUE", "1", "T", "YES"})


def analysis_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores the analysis counts: from a long export, drop calibration reads and tasks not yet submitted.

    Any other long score table (e.g. the R reference data) passes through unchanged.
    """
    keep = pd.Series(True, index=scores.index)
    if "calibration" in scores.columns:
        keep &= ~_truthy(scores["calibration"])
    if "task_status" in scores.columns:
        keep &= scores["task_status"].astype(str) == TaskStatus.SUBMITTED
    return scores.loc[keep]


def analysis_patients(patients: pd.DataFrame) -> pd.DataFrame:
    """Patients Table 1 describes: calibration cases are not part of the analysed sample."""
    if "calibration" in patients.columns:
        return patients.loc[~_truthy(patients["calibration"])]
    return patients


def analysis_guesses(answers: pd.DataFrame) -> pd.DataFrame:
    """The blinding export as the report counts it (``reader``, ``arm``, ``outcome``): calibration reads dropped,
    the version shown (``paired`` in paired mode) as the arm. ValueError in words for another table."""
    missing = [c for c in ("reader", "shown", "outcome") if c not in answers.columns]
    if missing:
        raise ValueError(f"the blinding answers file lacks the column(s) {', '.join(missing)} (use the 'blinding' "
                         "export of the study)")
    if "calibration" in answers.columns:
        answers = answers.loc[~_truthy(answers["calibration"])]
    unknown = sorted(set(answers["outcome"].astype(str)) - set(BLINDING_OUTCOMES))
    if unknown:
        raise ValueError(f"the blinding answers file has unknown outcome(s): {', '.join(unknown[:5])}")
    return pd.DataFrame({"reader": answers["reader"].astype(str), "arm": answers["shown"].astype(str),
                         "outcome": answers["outcome"].astype(str)}).reset_index(drop=True)


def analysis_rois(rois: pd.DataFrame) -> pd.DataFrame:
    """One measurement per image and label: where several readers measured, the most recent one counts."""
    if "updated_at" not in rois.columns:
        return rois
    ordered = rois.sort_values("updated_at", kind="stable")
    return ordered.drop_duplicates(["case_id", "sequence", "version", "roi"], keep="last")
