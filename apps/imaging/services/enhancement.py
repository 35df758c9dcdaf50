"""Enhancement jobs: one per conventional study series, run by the GPU worker, retryable and idempotent."""

import logging

from django.db import transaction

from apps.imaging.models import EnhancementJob, JobStatus, Sequence, Series, SeriesStatus, Version

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
