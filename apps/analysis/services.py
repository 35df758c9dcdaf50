"""A study's analysis from its own exports, and export jobs built by the worker into the default storage."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from django.core.files import File
from django.core.files.storage import default_storage

from apps.accounts.models import User
from apps.analysis import blinding, exports, plan, power
from apps.analysis.models import ExportJob, ExportKind
from apps.analysis.report import ReportMeta, render_pdf
from apps.analysis.stats import AnalysisResult, run_analysis
from apps.analysis.stats.validation import validate_patients, validate_rois
from apps.jobs import lifecycle
from apps.jobs.models import JobStatus
from apps.studies.models import ReaderStudy
from apps.studies.services import sources


class NothingToAnalyse(ValueError):
    """The study has no submitted scores yet."""


def analyse_study(study: ReaderStudy) -> tuple[AnalysisResult, ReportMeta]:
    """Run the analysis on the study's long, patient and ROI exports, through the same adapters as a CSV would.

    Table 1 or Table 2 says why it is not computed when its data cannot be used (a missing age is counted, not
    a reason).
    """
    scores = exports.analysis_scores(exports.frame(study, ExportKind.LONG))
    if scores.empty:
        raise NothingToAnalyse("No submitted scores yet: the report needs at least one submitted reading task.")
    meta = ReportMeta(
        title=study.title,
        seed=study.seed,
        item_labels=dict(study.items.values_list("key", "label")),
        notes=[f"Study status: {study.get_status_display()}; calibration reads and unsubmitted tasks excluded.",
               dl_source_note(study)],
    )
    patients = _checked("table1", "the patients' clinical data",
                        exports.analysis_patients(exports.frame(study, ExportKind.PATIENTS)), validate_patients, meta)
    rois = _checked("table2", "the ROI measurements", exports.analysis_rois(exports.frame(study, ExportKind.ROIS)),
                    validate_rois, meta)
    meta.plan = plan.locked_plan(study)
    if meta.plan is None:
        meta.plan_note = (
            "a plan is drafted but locks only when the study opens for reading"
            if plan.draft_plan_exists(study)
            else "no analysis plan was locked before the study opened"
        )
    guesses = blinding.guesses_frame(study)
    if guesses is None:
        meta.unavailable["blinding"] = "Not computed: this study did not ask readers which image they think is DL-enhanced."
    result = run_analysis(scores, patients, rois, plan=meta.plan.spec if meta.plan else None, guesses=guesses)
    start = time.perf_counter()
    try:
        meta.power = power.report_curves(study, scores, meta.plan.spec if meta.plan else None, len(result.readers))
    except power.PowerInputError as exc:
        meta.power_note = str(exc)
    result.timings["power"] = time.perf_counter() - start
    return result, meta


def dl_source_note(study: ReaderStudy) -> str:
    """The report's sentence naming what made the study's DL images (the exports' dl_* columns, in words)."""
    _, _, sha256, _ = sources.export_fields(study)
    return f"DL images: {sources.describe(study)}" + (f"; model file sha256 {sha256}." if sha256 else ".")


def _checked(key: str, what: str, frame: pd.DataFrame, validate, meta: ReportMeta) -> pd.DataFrame | None:
    """The frame if the analysis can use it; otherwise None, and the report's table says why."""
    if frame.empty:
        return None
    try:
        validate(frame)
    except ValueError as exc:
        meta.unavailable[key] = f"Not computed: {what} could not be used ({exc})."
        return None
    return frame


def start_export(study: ReaderStudy, kind: str, user: User) -> ExportJob:
    """Create the job and queue it once the row is committed."""
    job = ExportJob.objects.create(study=study, kind=kind, created_by=user)
    lifecycle.queue(job)
    return job


def retry_export(job: ExportJob) -> ExportJob:
    """Queues a failed export, or one whose worker stopped, again; lifecycle.NotRetryable for any other."""
    lifecycle.retry(job)
    return job


def job_file_name(job: ExportJob) -> str:
    """Deterministic, so a re-run overwrites its own file rather than leaving a second one."""
    return f"exports/study{job.study_id}/job{job.pk}_{exports.export_filename(job.study, job.kind)}"


def run_export_job(job_id: int) -> None:
    """Build the job's file. Safe to run twice: a finished job is left alone, an interrupted one starts over."""
    job = ExportJob.objects.select_related("study").get(pk=job_id)
    if job.status == JobStatus.DONE and job.file and default_storage.exists(job.file.name):
        return
    if lifecycle.start(ExportJob, job.pk) is None:
        return
    ExportJob.objects.filter(pk=job.pk).update(progress=0.0)
    name = job_file_name(job)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export"
        rows = _build(job, path)
        if default_storage.exists(name):
            default_storage.delete(name)
        with path.open("rb") as handle:
            stored = default_storage.save(name, File(handle, name=Path(name).name))
    lifecycle.finish(job, progress=1.0, rows=rows, file=stored)


def _build(job: ExportJob, path: Path) -> int:
    if job.kind == ExportKind.REPORT:
        result, meta = analyse_study(job.study)
        path.write_bytes(render_pdf(result, meta))
        return int(result.means["n"].sum())

    def progress(done: int, total: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(progress=min(done / total, 0.99) if total else 0.0, rows=done)
        lifecycle.beat(ExportJob, job.pk)

    with path.open("w", encoding="utf-8", newline="") as handle:
        return exports.write_csv(job.study, job.kind, handle, progress)

