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

from apps.enhancement_models import runtime
from apps.enhancement_models import services as registry
from apps.imaging import blinding, deidentify
from apps.imaging.models import EnhancementJob, JobStatus, Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import dl_versions, storage
from apps.imaging.services.enhancement import AlreadyRead, studies_reading
from apps.jobs import lifecycle
from apps.privacy.services import faces
from worker.enhance import dicom_io, inference, qa

logger = logging.getLogger(__name__)

def _source_series(series: Series, folder: Path) -> dicom_io.DicomSeries:
    for index, instance in enumerate(series.instances.all()):
        with storage.image_storage().open(instance.file.name, "rb") as source:
            (folder / f"{index:05d}.dcm").write_bytes(source.read())
    return dicom_io.read_series(folder)


def enhanced_uid_factory(series: Series, source: dl_versions.DLSource):
    """UIDs of the DL series follow from the conventional one, the source (model sha256 and factor) and the
    deployment key: a re-run gives the same, and each source's DL version of one series has its own."""
    secret = settings.DEID_SECRET
    origin = f"{source.model.sha256}:{source.factor!r}"

    def factory(key: str) -> str:
        return deidentify.remap_uid(f"enhanced:{series.series_uid}:{origin}:{key}", secret)

    return factory


def _dl_series(series: Series, series_uid: str, source: dl_versions.DLSource, window: tuple[float, float]) -> Series:
    return Series.objects.create(
        case=series.case, series_uid=series_uid, study_uid=series.study_uid, sequence=series.sequence,
        sequence_overridden=series.sequence_overridden, version=Version.DL, source=SeriesSource.ENHANCED,
        status=SeriesStatus.READY, description=series.description, rows=series.rows, columns=series.columns,
        pixel_spacing=series.pixel_spacing, slice_thickness=series.slice_thickness,
        orientation=series.orientation, acquisition=series.acquisition,
        window_center=window[0], window_width=window[1],
        conventional=series, dl_model=source.model, dl_factor=source.factor,
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


def _made_already(job: EnhancementJob, existing: Series) -> EnhancementJob:
    """The series already has a DL version from the job's source (model and factor): the job makes nothing and
    records that version as its output unless another job made it."""
    taken = EnhancementJob.objects.filter(output_series=existing).exclude(pk=job.pk).exists()
    return lifecycle.finish(
        job, output_series=None if taken else existing,
        error=f"Series {job.series_id} already had this model's DL version at this factor (series {existing.pk}).",
    )


def run_job(job_id: int, device: str | None = None) -> EnhancementJob:
    """Enhances the job's series and stores the DL series, linked to its conventional series as the version made
    by the job's source: its model (or the deployment's default) at its factor.

    Idempotent: a job that already produced its series returns at once; a crash before the commit leaves no
    rows and no files, so the job can simply run again. A DL version of the same source made meanwhile (checked
    again under the conventional series' row lock) is taken, never one of another model or factor. A job that
    `replaces` a DL series (a re-make) writes its images into that series and takes it over from the job that
    made it.
    """
    job = EnhancementJob.objects.select_related("series__case", "model").get(pk=job_id)
    if job.status == JobStatus.DONE and job.output_series_id:
        return job
    series = job.series
    model = job.model or registry.default_model()
    dl_source = dl_versions.DLSource(model, job.noise_reduction_factor)
    existing = dl_versions.dl_version(series, dl_source)
    if existing is not None and existing.pk != job.replaces_id:
        return _made_already(job, existing)
    if lifecycle.start(EnhancementJob, job.pk) is None:
        return job
    runner = runtime.runner_for(model, device or settings.ENHANCE_DEVICE or None)
    chosen = runner.device
    EnhancementJob.objects.filter(pk=job.pk).update(device=str(chosen), model=model)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="readerstudy-enhance-") as tmp:
        source = _source_series(series, Path(tmp))
    timings["read_s"] = time.perf_counter() - start
    mark = time.perf_counter()
    volume = inference.enhance_volume(source.volume, source.datasets[0], job.noise_reduction_factor, runner=runner)
    volume = faces.same_cut(series, source.volume, volume)  # a defaced series' DL version: the same voxels cut
    timings["inference_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    uids = dicom_io.enhanced_uids(source, enhanced_uid_factory(series, dl_source))
    datasets = dicom_io.enhanced_datasets(source, volume, uids)
    residual = qa.residual_stats(source.volume, volume)
    difference = qa.difference_png(source.volume, volume)
    window = blinding.display_window(datasets)  # as at ingest, so both versions get their window alike
    written: list[str] = []
    try:
        with transaction.atomic():
            # Another job of the same source may have stored its DL version while the model ran: that one stays.
            Series.objects.select_for_update().filter(pk=series.pk).values_list("pk", flat=True).get()
            existing = dl_versions.dl_version(series, dl_source)
            if job.replaces_id is None and existing is not None:
                job.refresh_from_db(fields=["attempts", "started_at", "device", "model"])
                return _made_already(job, existing)
            if job.replaces_id is not None:
                dl, old_files = _emptied_series(job.replaces_id, uids.series_instance_uid, window)
                EnhancementJob.objects.filter(output_series=dl).update(
                    output_series=None, error=f"Its DL series was re-made by job {job.pk}."
                )
                transaction.on_commit(lambda: storage.discard_files(old_files))
            else:
                dl = _dl_series(series, uids.series_instance_uid, dl_source, window)
            for ds in datasets:
                storage.store_instance(dl, ds, written)
            dl_versions.link(series, dl, dl_source)  # a re-made series now records the source that re-made it
            job.difference_image.save(f"qa/difference-{job.pk}.png", ContentFile(difference), save=False)
            written.append(job.difference_image.name)
            timings["write_s"] = time.perf_counter() - mark
            timings["total_s"] = time.perf_counter() - start
            lifecycle.finish(
                job, output_series=dl, model=model, model_version=model.version, runtime=runner.runtime,
                run_settings=_run_settings(runner), timings={k: round(v, 3) for k, v in timings.items()},
                qa=residual.as_dict(), qa_flagged=residual.flagged, difference_image=job.difference_image,
            )
            job.refresh_from_db()
    except BaseException:
        storage.discard_files(written)
        raise
    logger.info("Enhancement job %s done on %s in %.1f s", job.pk, chosen, timings["total_s"])
    return job
