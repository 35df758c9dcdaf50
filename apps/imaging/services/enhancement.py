"""Enhancement jobs: one per conventional study series, run by the GPU worker, retryable and idempotent."""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.access import is_admin, is_coordinator
from apps.accounts.models import User
from apps.enhancement_models.models import EnhancementModel
from apps.imaging.models import (
    EnhancementJob,
    JobStatus,
    Sequence,
    Series,
    SeriesSource,
    SeriesStatus,
    Version,
)
from worker.enhance.context import check_factor
from worker.enhance.qa import FAILURE_MESSAGES

logger = logging.getLogger(__name__)

ENHANCED_SEQUENCES = (Sequence.T2W, Sequence.FLAIR, Sequence.T1W_POST)


def needs_enhancement(series: Series) -> bool:
    return (
        series.version == Version.CONVENTIONAL
        and series.sequence in ENHANCED_SEQUENCES
        and series.status == SeriesStatus.READY
        and series.counterpart_id is None
    )


def enqueue(job: EnhancementJob) -> None:
    from worker.enhancement import enhance_series

    transaction.on_commit(lambda: enhance_series.delay(job_id=job.pk))


def request_enhancement(
    series: Series, factor: float | None = None, model: EnhancementModel | None = None
) -> EnhancementJob | None:
    """Creates and queues a job for a series that should have a DL version and has none yet.

    The job runs at the deployment's factor (READERSTUDY_ENHANCE_FACTOR) unless a caller asks for another; an
    identity copy (factor 1) is only ever made when asked for, and QA fails it. It runs ``model`` (a registered,
    not retired model), or the deployment's default model (READERSTUDY_ENHANCE_MODEL), chosen when it runs.
    """
    factor = settings.ENHANCE_FACTOR if factor is None else check_factor(factor)
    if model is not None and model.retired:
        raise ValueError(f"Model {model} is retired; no new job runs it.")
    if not needs_enhancement(series):
        return None
    job = series.enhancement_jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
    if job is None:
        job = EnhancementJob.objects.create(series=series, noise_reduction_factor=factor, model=model)
        enqueue(job)
    return job


def retry_enhancement(job: EnhancementJob) -> None:
    """Queues a failed (or stuck) job again; a finished job (its series made, or superseded) is left alone."""
    if job.status == JobStatus.DONE:
        return
    job.status = JobStatus.QUEUED
    job.error = ""
    job.save(update_fields=["status", "error"])
    enqueue(job)


def link_pair(conventional: Series, dl: Series) -> None:
    conventional.counterpart = dl
    dl.counterpart = conventional
    conventional.save(update_fields=["counterpart"])
    dl.save(update_fields=["counterpart"])


def mark_failed(job_id: int, message: str) -> None:
    """Records why a job failed, visibly to coordinators; the job can be retried."""
    EnhancementJob.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, error=message[:2000], finished_at=timezone.now()
    )


def _geometry(series: Series) -> tuple:
    locations = tuple(round(v, 2) for v in series.instances.values_list("slice_location", flat=True))
    return (series.rows, series.columns, locations,
            tuple(round(v, 3) for v in series.pixel_spacing), tuple(round(v, 3) for v in series.orientation))


def vendor_link_problem(conventional: Series, vendor: Series) -> str | None:
    """Why `vendor` cannot be linked as the DL version of `conventional`, in words; None when it can."""
    if conventional.pk == vendor.pk:
        return "A series cannot be its own enhanced version."
    if conventional.version != Version.CONVENTIONAL or conventional.source != SeriesSource.UPLOADED:
        return "The series in the URL must be an uploaded conventional series."
    if vendor.counterpart_id is not None or (
        conventional.counterpart_id is not None and conventional.counterpart.source == SeriesSource.VENDOR
    ):
        return "One of the two series is already linked to a vendor-enhanced or conventional series."
    if conventional.case_id != vendor.case_id or conventional.study_uid != vendor.study_uid:
        return "The vendor-enhanced series belongs to another study than the conventional series."
    ours, theirs = _geometry(conventional), _geometry(vendor)
    names = ("rows", "columns", "slice positions", "pixel spacing", "orientation")
    differing = [name for name, a, b in zip(names, ours, theirs, strict=True) if a != b]
    if differing:
        return f"The series do not match in geometry: {', '.join(differing)} differ."
    if conventional.sequence != vendor.sequence:
        return (f"The vendor-enhanced series is classified {vendor.sequence}, the conventional series "
                f"{conventional.sequence}; correct the sequence first if a classification is wrong.")
    return None


def vendor_candidates(vendor: Series) -> list[int]:
    """Ids of the conventional series a held vendor series could be linked to (same study, geometry, sequence)."""
    if vendor.source != SeriesSource.VENDOR or vendor.counterpart_id is not None:
        return []
    others = Series.objects.filter(
        case_id=vendor.case_id, study_uid=vendor.study_uid, version=Version.CONVENTIONAL, source=SeriesSource.UPLOADED
    ).select_related("counterpart").order_by("pk")
    return [series.pk for series in others if vendor_link_problem(series, vendor) is None]


@transaction.atomic
def attach_vendor_series(conventional: Series, vendor: Series) -> Series:
    """Links an uploaded vendor-enhanced series (e.g. from commercial DL software) as the DL version of a
    conventional one and releases its vendor hold.

    Both must belong to the same study and have the same geometry and sequence; otherwise a ValueError says what
    differs. A DL series the engine made for the conventional one is unlinked and marked rejected (the vendor's is
    the one studied), unless a reading task shows it: then the link is refused. The changes reach the audit trail
    (version, source, status, counterpart of each series) with the requesting user as actor.
    """
    conventional = Series.objects.select_for_update(of=("self",)).select_related("counterpart").get(
        pk=conventional.pk
    )
    vendor = Series.objects.select_for_update().get(pk=vendor.pk)
    problem = vendor_link_problem(conventional, vendor)
    if problem:
        raise ValueError(problem)
    engine_dl = conventional.counterpart
    if engine_dl is not None:
        from apps.studies.models import ReadingTask  # no import cycle at start-up

        if ReadingTask.objects.filter(panels__series=engine_dl).exists():
            raise ValueError("The conventional series' engine-made DL version is already in a reader study's "
                             "assignment; regenerate that study without it first.")
        engine_dl.counterpart, engine_dl.status = None, SeriesStatus.REJECTED
        engine_dl.save(update_fields=["counterpart", "status"])
        EnhancementJob.objects.filter(output_series=engine_dl).update(
            error="Superseded by an attached vendor-enhanced series."
        )
        conventional.counterpart = None
    vendor.version, vendor.source, vendor.sequence = Version.DL, SeriesSource.VENDOR, conventional.sequence
    if vendor.status == SeriesStatus.HELD_VENDOR:
        vendor.status, vendor.hold_reason = SeriesStatus.READY, ""
    vendor.save(update_fields=["version", "source", "sequence", "status", "hold_reason"])
    link_pair(conventional, vendor)
    pending = [JobStatus.QUEUED, JobStatus.FAILED]
    EnhancementJob.objects.filter(series__in=[conventional, vendor], status__in=pending).update(
        status=JobStatus.DONE, output_series=None, error="Superseded by an attached vendor-enhanced series.",
        finished_at=timezone.now(),
    )
    logger.info("Series %s linked as the vendor-enhanced version of series %s", vendor.pk, conventional.pk)
    return vendor


def provenance(series: Series) -> dict | None:
    """Where a DL series made by the engine comes from, from the database only (never from its DICOM header):
    the model (name, version, sha256, built in or registered), its run settings with the noise-reduction factor,
    the device and the runtime. None for a series no enhancement job made (a conventional or vendor series)."""
    job = EnhancementJob.objects.filter(output_series=series).select_related("model").first()
    if job is None:
        return None
    model = job.model
    if model is None and job.model_version:  # made before the registry: the built-in row of that version
        model = EnhancementModel.objects.filter(built_in=True, version=job.model_version).first()
    return {
        "job": job.pk,
        "model": model.name if model else "",
        "version": model.version if model else job.model_version,
        "sha256": model.sha256 if model else "",
        "built_in": model.built_in if model else None,
        "settings": {"noise_reduction_factor": job.noise_reduction_factor, **job.run_settings},
        "device": job.device,
        "runtime": job.runtime,
    }


def qa_failures(job: EnhancementJob) -> list[str]:
    """Why the residual check failed, in words for coordinators (empty when it passed or has not run)."""
    return [FAILURE_MESSAGES.get(code, code) for code in job.qa.get("failures", [])] if job.qa_flagged else []


def held_dl_series() -> QuerySet[Series]:
    """DL series whose residual check failed and that nobody has accepted: never offered for reading."""
    return Series.objects.filter(produced_by__qa_flagged=True, produced_by__qa_accepted_at__isnull=True)


def accept_qa(job: EnhancementJob, user: User) -> EnhancementJob:
    """Lets a flagged pair be read: a coordinator of its site (or an admin) looked at it and says it is fine.

    Who and when are kept on the job (and in the audit trail); PermissionDenied for anyone else.
    """
    own_site = is_coordinator(user) and user.institution_id == job.series.case.institution_id
    if not (is_admin(user) or own_site):
        raise PermissionDenied("Only a coordinator of the series' site or an admin can accept it.")
    if not job.held_for_review or job.output_series_id is None:
        raise ValueError("Only a finished job whose residual check failed and is not accepted yet can be accepted.")
    job.qa_accepted_by, job.qa_accepted_at = user, timezone.now()
    job.save(update_fields=["qa_accepted_by", "qa_accepted_at"])
    logger.info("Enhancement job %s: flagged residual accepted by %s", job.pk, user.username)
    return job


def identity_jobs() -> QuerySet[EnhancementJob]:
    """Finished jobs whose DL series is an identity copy of its input (run at factor 1), still in use."""
    return EnhancementJob.objects.filter(
        status=JobStatus.DONE, noise_reduction_factor=1.0, output_series__isnull=False,
        output_series__source=SeriesSource.ENHANCED,
    ).select_related("series__case", "output_series")


def studies_reading(series: Series, lock: bool = False) -> list[str]:
    """Titles of the studies in which a reader has opened or scored a task showing this series.

    `lock` holds those tasks (inside the caller's transaction) so none is opened while the series changes.
    """
    from apps.studies.models import ReaderStudy, ReadingTask, TaskStatus  # no import cycle at start-up

    showing = ReadingTask.objects.filter(panels__series=series)
    if lock:
        list(showing.select_for_update(of=("self",)).values_list("pk", flat=True))
    seen = showing.exclude(status=TaskStatus.PENDING)
    return sorted(ReaderStudy.objects.filter(pk__in=seen.values("study_id")).values_list("title", flat=True))


class AlreadyRead(Exception):
    """The DL series has been shown to readers: replacing it would change what their scores are about."""


def remake(job: EnhancementJob) -> EnhancementJob:
    """Queues a job that re-makes this job's DL series in place at the deployment factor.

    In place: the series keeps its row and UIDs (they derive from the input), so reading tasks that show it and
    are not opened yet show the new images. Refused (AlreadyRead) once any reader opened such a task; the worker
    checks again before it replaces anything. Queuing twice returns the job already queued.
    """
    dl = job.output_series
    if dl is None:
        raise ValueError(f"Enhancement job {job.pk} has no DL series to re-make.")
    if settings.ENHANCE_FACTOR == 1.0:
        raise ValueError("READERSTUDY_ENHANCE_FACTOR is 1: re-making would make the same identity copy again.")
    studies = studies_reading(dl)
    if studies:
        raise AlreadyRead(
            f"Job {job.pk} ({job.series}): its DL series has been read in {', '.join(studies)}; it is kept as is."
        )
    pending = EnhancementJob.objects.filter(replaces=dl, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
    if pending is not None:
        return pending
    new = EnhancementJob.objects.create(
        series=job.series, noise_reduction_factor=settings.ENHANCE_FACTOR, replaces=dl, model=job.model
    )
    enqueue(new)
    return new


@dataclass
class RemakeReport:
    queued: list[EnhancementJob] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def remake_identity_jobs() -> RemakeReport:
    """Queues a re-make at the deployment factor for every identity DL series still in use (issue: jobs made on
    upload ran at factor 1 and copied their input); series already read are refused and listed, not touched."""
    report = RemakeReport()
    for job in identity_jobs():
        try:
            report.queued.append(remake(job))
        except AlreadyRead as exc:
            report.refused.append(str(exc))
    return report
