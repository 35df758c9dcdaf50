"""Enhancement jobs: one per conventional study series, run by the GPU worker, retryable and idempotent."""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.access import is_admin, is_coordinator
from apps.accounts.models import User
from apps.enhancement_models import services as registry
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
from apps.imaging.services import dl_versions
from apps.imaging.services.dl_versions import DLSource
from apps.jobs import lifecycle
from worker.enhance.context import check_factor
from worker.enhance.qa import FAILURE_MESSAGES

logger = logging.getLogger(__name__)

ENHANCED_SEQUENCES = (Sequence.T2W, Sequence.FLAIR, Sequence.T1W_POST)


def needs_enhancement(series: Series, source: DLSource | None = None) -> bool:
    """A ready conventional series of a study sequence without a DL version from ``source`` (None: a source not
    known yet, e.g. a misconfigured default, whose job will say why when it runs)."""
    return (
        series.version == Version.CONVENTIONAL
        and series.source == SeriesSource.UPLOADED
        and series.sequence in ENHANCED_SEQUENCES
        and series.status == SeriesStatus.READY
        and (source is None or dl_versions.dl_version(series, source) is None)
    )


def enqueue(job: EnhancementJob) -> None:
    """Queues the job (on queue "gpu") once its row is committed."""
    lifecycle.queue(job)


def request_enhancement(
    series: Series, factor: float | None = None, model: EnhancementModel | None = None
) -> EnhancementJob | None:
    """Creates and queues a job for a series that has no DL version from the source (model, factor) yet.

    The job runs at the deployment's factor (READERSTUDY_ENHANCE_FACTOR) unless a caller asks for another; an
    identity copy (factor 1) is only ever made when asked for, and QA fails it. It runs ``model`` (a registered,
    not retired model), or the deployment's default model (READERSTUDY_ENHANCE_MODEL), chosen when it runs. A job
    of the same source already queued or running is returned instead of a second one.
    """
    factor = settings.ENHANCE_FACTOR if factor is None else check_factor(factor)
    if model is not None and model.retired:
        raise ValueError(f"Model {model} is retired; no new job runs it.")
    try:
        default = registry.default_model()
    except ValueError:  # the job says why when it runs
        default = None
    chosen = model or default
    if not needs_enhancement(series, None if chosen is None else DLSource(chosen, factor)):
        return None
    same_model = Q(model=chosen) | Q(model__isnull=True) if chosen == default else Q(model=chosen)
    job = series.enhancement_jobs.filter(
        same_model, status__in=[JobStatus.QUEUED, JobStatus.RUNNING], noise_reduction_factor=factor,
        replaces__isnull=True,
    ).first()
    if job is None:
        job = EnhancementJob.objects.create(series=series, noise_reduction_factor=factor, model=model)
        enqueue(job)
    return job


def retry_enhancement(job: EnhancementJob) -> None:
    """Queues a failed job, or one whose worker stopped, again; lifecycle.NotRetryable for any other."""
    lifecycle.prepare_retry(job)
    enqueue(job)


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
