"""Enhancement jobs: one per conventional study series, run by the GPU worker, retryable and idempotent."""

import logging

from django.db import transaction
from django.utils import timezone

from apps.imaging.models import (
    EnhancementJob,
    JobStatus,
    Sequence,
    Series,
    SeriesSource,
    SeriesStatus,
    Version,
)

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


def request_enhancement(series: Series, factor: float = 1.0) -> EnhancementJob | None:
    """Creates and queues a job for a series that should have a DL version and has none yet."""
    if not needs_enhancement(series):
        return None
    job = series.enhancement_jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).first()
    if job is None:
        job = EnhancementJob.objects.create(series=series, noise_reduction_factor=factor)
        enqueue(job)
    return job


def retry_enhancement(job: EnhancementJob) -> None:
    """Queues a failed (or stuck) job again; a job that already produced its series is left alone."""
    if job.status == JobStatus.DONE and job.output_series_id:
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


@transaction.atomic
def attach_vendor_series(conventional: Series, vendor: Series) -> Series:
    """Makes an uploaded series the DL version of a conventional one (for example from commercial software).

    Both must belong to the same study and have the same geometry; otherwise a ValueError says what differs.
    """
    if conventional.pk == vendor.pk:
        raise ValueError("A series cannot be its own enhanced version.")
    if conventional.version != Version.CONVENTIONAL or vendor.counterpart_id or conventional.counterpart_id:
        raise ValueError("Both series must be unpaired, and the first must be a conventional series.")
    if conventional.case_id != vendor.case_id or conventional.study_uid != vendor.study_uid:
        raise ValueError("The vendor-enhanced series belongs to another study than the conventional series.")
    ours, theirs = _geometry(conventional), _geometry(vendor)
    names = ("rows", "columns", "slice positions", "pixel spacing", "orientation")
    differing = [name for name, a, b in zip(names, ours, theirs, strict=True) if a != b]
    if differing:
        raise ValueError(f"The series do not match in geometry: {', '.join(differing)} differ.")
    vendor.version = Version.DL
    vendor.source = SeriesSource.VENDOR
    vendor.sequence = conventional.sequence
    vendor.save(update_fields=["version", "source", "sequence"])
    link_pair(conventional, vendor)
    pending = [JobStatus.QUEUED, JobStatus.FAILED]
    EnhancementJob.objects.filter(series__in=[conventional, vendor], status__in=pending).update(
        status=JobStatus.DONE, output_series=None, error="Superseded by an attached vendor-enhanced series.",
        finished_at=timezone.now(),
    )
    return vendor
