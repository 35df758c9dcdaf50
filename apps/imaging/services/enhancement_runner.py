"""Running an enhancement job on the worker: the only imaging service that loads the engine (torch, onnxruntime).

Kept apart from `enhancement` so web processes never import torch. Every model, the built-in CE U-Net or a
registered ONNX file, runs through the same runner (`apps.enhancement_models.runtime`), and the job records which
model (name, version, sha256 via the registry row), settings, device and runtime made the DL series.
"""

import logging
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.enhancement_models import runtime
from apps.enhancement_models import services as registry
from apps.imaging import blinding, deidentify
from apps.imaging.models import EnhancementJob, JobStatus, Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import storage
from apps.imaging.services.enhancement import AlreadyRead, link_pair, studies_reading
from worker.enhance import dicom_io, inference, qa

logger = logging.getLogger(__name__)

SUPERSEDED = "Superseded by an attached vendor-enhanced series."


def _source_series(series: Series, folder: Path) -> dicom_io.DicomSeries:
    for index, instance in enumerate(series.instances.all()):
        with storage.image_storage().open(instance.file.name, "rb") as source:
            (folder / f"{index:05d}.dcm").write_bytes(source.read())
    return dicom_io.read_series(folder)


def enhanced_uid_factory(series: Series):
    """UIDs of the DL series follow from the conventional one and the deployment key: a re-run gives the same."""
    secret = settings.DEID_SECRET

    def factory(key: str) -> str:
        return deidentify.remap_uid(f"enhanced:{series.series_uid}:{key}", secret)

    return factory


def _dl_series(series: Series, series_uid: str, source: str, window: tuple[float, float]) -> Series:
    return Series.objects.create(
        case=series.case, series_uid=series_uid, study_uid=series.study_uid, sequence=series.sequence,
        sequence_overridden=series.sequence_overridden, version=Version.DL, source=source,
        status=SeriesStatus.READY, description=series.description, rows=series.rows, columns=series.columns,
        pixel_spacing=series.pixel_spacing, slice_thickness=series.slice_thickness,
        orientation=series.orientation, acquisition=series.acquisition,
        window_center=window[0], window_width=window[1],
    )


def _emptied_series(dl_id: int, series_uid: str, window: tuple[float, float]) -> tuple[Series, list[str]]:
    """The DL series a re-make replaces, emptied for the new images (same row, same UIDs); with its old files.

    Checked again here, with its reading tasks locked: a series a reader has opened meanwhile is not touched.
    """
    dl = Series.objects.select_for_update().get(pk=dl_id)
    studies = studies_reading(dl, lock=True)
    if studies:
        raise AlreadyRead(f"The DL series has been read in {', '.join(studies)} meanwhile; it is kept as is.")
    old_files = list(dl.instances.values_list("file", flat=True))
    dl.instances.all().delete()
    dl.series_uid, (dl.window_center, dl.window_width) = series_uid, window
    dl.save(update_fields=["series_uid", "window_center", "window_width"])
    return dl, old_files


def warm_up_model() -> float | None:
    """Loads and runs the deployment's default model once, where ``READERSTUDY_ENHANCE_WARMUP`` asks for it.

    Returns the seconds spent, or None when not warmed (``auto`` without CUDA: a CPU worker that also
    ingests should not hold torch until an enhancement job arrives).
    """
    device = inference.select_device(settings.ENHANCE_DEVICE or None)
    if settings.ENHANCE_WARMUP == "0" or (settings.ENHANCE_WARMUP == "auto" and device.type != "cuda"):
        return None
    return inference.warm_up(runner=runtime.runner_for(registry.default_model(), str(device)))


def _run_settings(runner: inference.Runner, tile: int | None = None) -> dict:
    return {**runner.contract.as_dict(), "tile": tile or runner.contract.max_matrix}


def run_job(job_id: int, device: str | None = None) -> EnhancementJob:
    """Enhances the job's series and stores the DL series, linked to its conventional counterpart.

    Idempotent: a job that already produced its series returns at once; a crash before the commit leaves no
    rows and no files, so the job can simply run again. A job that `replaces` a DL series (a re-make) writes
    its images into that series and takes it over from the job that made it.
    """
    job = EnhancementJob.objects.select_related("series__case").get(pk=job_id)
    if job.status == JobStatus.DONE and job.output_series_id:
        return job
    series = job.series
    if series.counterpart_id is not None and series.counterpart_id != job.replaces_id:
        if series.counterpart.source == SeriesSource.VENDOR:  # linked meanwhile: nothing to make, nothing adopted
            job.status, job.error, job.finished_at = JobStatus.DONE, SUPERSEDED, timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            return job
        job.status, job.output_series_id, job.finished_at = JobStatus.DONE, series.counterpart_id, timezone.now()
        job.save(update_fields=["status", "output_series", "finished_at"])
        return job
    model = job.model or registry.default_model()
    runner = runtime.runner_for(model, device or settings.ENHANCE_DEVICE or None)
    chosen = runner.device
    EnhancementJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), device=str(chosen), error="",
        model=model,
    )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="readerstudy-enhance-") as tmp:
        source = _source_series(series, Path(tmp))
    timings["read_s"] = time.perf_counter() - start
    mark = time.perf_counter()
    volume = inference.enhance_volume(source.volume, source.datasets[0], job.noise_reduction_factor, runner=runner)
    timings["inference_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    uids = dicom_io.enhanced_uids(source, enhanced_uid_factory(series))
    datasets = dicom_io.enhanced_datasets(source, volume, uids)
    residual = qa.residual_stats(source.volume, volume)
    difference = qa.difference_png(source.volume, volume)
    window = blinding.display_window(datasets)  # as at ingest, so both versions get their window alike
    written: list[str] = []
    try:
        with transaction.atomic():
            # A vendor-enhanced series may have been linked while the model ran: it is the DL version then.
            linked = Series.objects.select_for_update().values_list("counterpart_id", flat=True).get(pk=series.pk)
            if job.replaces_id is None and linked is not None:
                EnhancementJob.objects.filter(pk=job.pk).update(
                    status=JobStatus.DONE, error=SUPERSEDED,
                    finished_at=timezone.now(),
                )
                job.refresh_from_db()
                return job
            if job.replaces_id is not None:
                dl, old_files = _emptied_series(job.replaces_id, uids.series_instance_uid, window)
                EnhancementJob.objects.filter(output_series=dl).update(
                    output_series=None, error=f"Its DL series was re-made by job {job.pk}."
                )
                transaction.on_commit(lambda: storage.discard_files(old_files))
            else:
                dl = _dl_series(series, uids.series_instance_uid, SeriesSource.ENHANCED, window)
            for ds in datasets:
                storage.store_instance(dl, ds, written)
            link_pair(series, dl)
            job.difference_image.save(f"qa/difference-{job.pk}.png", ContentFile(difference), save=False)
            written.append(job.difference_image.name)
            timings["write_s"] = time.perf_counter() - mark
            timings["total_s"] = time.perf_counter() - start
            job.refresh_from_db(fields=["attempts", "started_at", "device"])
            job.status = JobStatus.DONE
            job.output_series = dl
            job.model, job.model_version = model, model.version
            job.runtime, job.run_settings = runner.runtime, _run_settings(runner)
            job.timings = {k: round(v, 3) for k, v in timings.items()}
            job.qa = residual.as_dict()
            job.qa_flagged = residual.flagged
            job.finished_at = timezone.now()
            job.save()
    except BaseException:
        storage.discard_files(written)
        raise
    logger.info("Enhancement job %s done on %s in %.1f s", job.pk, chosen, timings["total_s"])
    return job
