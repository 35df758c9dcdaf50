"""The DL source of a study: which model (at which factor), or the sites' vendor series, made the DL images it reads.

A study names its source in its definition (``ReaderStudy.dl_source``, ``dl_model``, ``dl_factor``); the default
follows the deployment (READERSTUDY_ENHANCE_MODEL at READERSTUDY_ENHANCE_FACTOR) and is written into the study when
it opens, so that what a study read never changes with a setting. Opening needs, for every image the study reads,
the DL version from that source, ready and past the residual check (or accepted): ``missing_pairs`` queues the
jobs that are missing (queue ``gpu``) and says what is still pending, per case and sequence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from apps.enhancement_models import services as registry
from apps.imaging.models import Case, EnhancementJob, JobStatus, Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import dl_versions, enhancement
from apps.imaging.services.dl_versions import DLSource
from apps.studies.models import DLSourceKind, ReaderStudy

SHOWN_PER_REASON = 20


def study_source(study: ReaderStudy) -> DLSource:
    """The source the study reads; ValueError where its default names no usable model."""
    if study.dl_source == DLSourceKind.VENDOR:
        return dl_versions.VENDOR
    factor = study.dl_factor if study.dl_factor is not None else settings.ENHANCE_FACTOR
    if study.dl_source == DLSourceKind.MODEL:
        return DLSource(study.dl_model, factor)
    return DLSource(study.dl_model or registry.default_model(), factor)


def describe(study: ReaderStudy) -> str:
    """The study's source in words, e.g. for the admin and the report."""
    try:
        source = study_source(study)
    except ValueError as exc:
        return f"the deployment's default model, which is not usable: {exc}"
    default = " (the deployment's default)" if study.dl_source == DLSourceKind.DEFAULT else ""
    return f"{source}{default}"


def export_fields(study: ReaderStudy) -> tuple[str, str, str, float | None]:
    """The study's source as export columns: kind (model or vendor), NAME@VERSION, sha256 and factor."""
    try:
        source = study_source(study)
    except ValueError:
        return DLSourceKind.MODEL, "", "", None
    if source.vendor:
        return "vendor", "", "", None
    return "model", source.model_reference, source.model.sha256, source.factor


def record_source(study: ReaderStudy, source: DLSource) -> None:
    """Writes the resolved default (model and factor) into the study as it opens."""
    if not source.vendor and (study.dl_model_id is None or study.dl_factor is None):
        study.dl_model, study.dl_factor = source.model, source.factor
        study.save(update_fields=["dl_model", "dl_factor"])


@dataclass(frozen=True)
class PendingPair:
    """An image the study reads whose DL version from the study's source is not ready."""

    case: str
    sequence: str
    status: str  # queued, running, failed, held_qa, no_vendor_series, held_vendor, cannot_enhance
    detail: str
    job: int | None = None

    def as_dict(self) -> dict:
        return {"case": self.case, "sequence": self.sequence, "status": self.status, "detail": self.detail,
                "job": self.job}


STATUS_WORDS = {
    "queued": "enhancement job queued for the GPU worker",
    "running": "enhancement job running",
    "failed": "enhancement job failed (queued again)",
    "held_qa": "DL version failed the residual check, waiting for a coordinator or admin to accept it "
               "(/imaging/enhancement/)",
    "no_vendor_series": "no vendor-enhanced series linked",
    "held_vendor": "a vendor-enhanced series is held, waiting to be linked on the Cases page",
    "cannot_enhance": "no DL version, and none is made for this sequence",
}


def _conventional_by_image(cases: Iterable[Case], sequences: list[str]) -> dict[tuple[int, str], list[Series]]:
    found: dict[tuple[int, str], list[Series]] = {}
    eligible = Series.objects.filter(
        case__in=list(cases), sequence__in=sequences, version=Version.CONVENTIONAL, source=SeriesSource.UPLOADED,
        status=SeriesStatus.READY,
    ).select_related("case").order_by("case__code", "sequence", "pk")
    for series in eligible:
        found.setdefault((series.case_id, series.sequence), []).append(series)
    return found


def _readable(series: Series, source: DLSource) -> bool:
    dl = dl_versions.dl_version(series, source)
    return dl is not None and dl.status == SeriesStatus.READY and not enhancement.held_dl_series().filter(
        pk=dl.pk).exists()


def _pending(series: Series, source: DLSource) -> PendingPair:
    """Why the image of this conventional series has no readable DL version from ``source``; queues a job where one
    is missing (or failed)."""
    code, sequence = series.case.code, series.sequence
    dl = dl_versions.dl_version(series, source)
    if dl is not None:
        job = EnhancementJob.objects.filter(output_series=dl).first()
        if job is not None and job.held_for_review:
            return PendingPair(code, sequence, "held_qa", f"DL series {dl.pk}, job {job.pk}", job.pk)
        return PendingPair(code, sequence, "cannot_enhance", f"DL series {dl.pk} is {dl.get_status_display()}")
    if source.vendor:
        held = Series.objects.filter(case_id=series.case_id, study_uid=series.study_uid, source=SeriesSource.VENDOR,
                                     status=SeriesStatus.HELD_VENDOR, conventional__isnull=True).first()
        if held is not None:
            return PendingPair(code, sequence, "held_vendor", f"vendor series {held.pk}")
        return PendingPair(code, sequence, "no_vendor_series", f"conventional series {series.pk}")
    last_failed = series.enhancement_jobs.filter(
        model=source.model, noise_reduction_factor=source.factor, status=JobStatus.FAILED
    ).order_by("-pk").first()
    job = enhancement.request_enhancement(series, factor=source.factor, model=source.model)
    if job is None:
        return PendingPair(code, sequence, "cannot_enhance", f"conventional series {series.pk}")
    if last_failed is not None and job.status == JobStatus.QUEUED and job.pk > last_failed.pk:
        return PendingPair(code, sequence, "failed", f"job {job.pk}; the last attempt (job {last_failed.pk}) "
                           f"failed: {last_failed.error[:200]}", job.pk)
    return PendingPair(code, sequence, job.status, f"job {job.pk}", job.pk)


def missing_pairs(study: ReaderStudy, cases: Iterable[Case] | None = None,
                  source: DLSource | None = None) -> list[PendingPair]:
    """Every image (case and sequence) of the study whose DL version from the study's source is not ready to read,
    in case and sequence order. An image is ready when one of its conventional series has its DL version from the
    source, ready and not held by the residual check; otherwise its first conventional series gets a job (queue
    ``gpu``, on commit) where that version is missing, and a failed job is queued again. ValueError where a model
    that must run is retired."""
    source = source or study_source(study)
    cases = study.cases.all() if cases is None else cases
    pending = []
    for series_list in _conventional_by_image(cases, list(study.sequences)).values():
        if not any(_readable(series, source) for series in series_list):
            pending.append(_pending(series_list[0], source))
    return pending


def describe_pending(pending: list[PendingPair], source: DLSource) -> str:
    """The reason a study cannot open (or take cases), grouped by what is missing, naming each case and sequence."""
    groups: dict[str, list[PendingPair]] = {}
    for pair in pending:
        groups.setdefault(pair.status, []).append(pair)
    parts = []
    for status, pairs in groups.items():
        names = ", ".join(f"{p.case} {p.sequence}" for p in pairs[:SHOWN_PER_REASON])
        more = f" and {len(pairs) - SHOWN_PER_REASON} more" if len(pairs) > SHOWN_PER_REASON else ""
        parts.append(f"{STATUS_WORDS.get(status, status)}: {names}{more}")
    return (f"{len(pending)} image(s) have no readable DL version from {source} yet. " + "; ".join(parts) + ".")
