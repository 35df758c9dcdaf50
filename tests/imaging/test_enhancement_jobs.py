"""Enhancement jobs on the worker side: DL series written and linked, idempotent, retryable, vendor pairs."""

import numpy as np
import pydicom
import pytest

from apps.imaging.models import EnhancementJob, JobStatus, Sequence, Series, SeriesSource, Version
from apps.imaging.services import dl_versions, enhancement, enhancement_runner, ingest, storage, uploads
from apps.imaging.services import vendor as vendor_links
from apps.institutions.services import add_site
from tests.imaging.dicom_samples import write_patient_study
from worker.enhance import inference
from worker.enhancement import enhance_series

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(tmp_path):
    site = add_site("west", "West Clinic")
    folder, _ = write_patient_study(tmp_path / "incoming", seed=21)
    ingest.process_batch(uploads.stage_path(site, None, folder).pk)
    return site


def t2w_job() -> EnhancementJob:
    return EnhancementJob.objects.get(series__sequence=Sequence.T2W)


def test_each_study_series_gets_one_queued_job(imported):
    jobs = EnhancementJob.objects.all()
    assert sorted(jobs.values_list("series__sequence", flat=True)) == ["FLAIR", "T1W_POST", "T2W"]
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.QUEUED}


def test_job_writes_a_linked_dl_series_with_same_geometry_and_new_uids(imported, settings):
    job = enhancement_runner.run_job(t2w_job().pk, device="cpu")
    conventional = job.series
    conventional.refresh_from_db()
    dl = job.output_series
    assert job.status == JobStatus.DONE and job.model_version and job.device == "cpu"
    assert dl.version == Version.DL and dl.source == SeriesSource.ENHANCED
    assert dl.conventional_id == conventional.pk and list(conventional.dl_versions.all()) == [dl]
    assert (dl.dl_model, dl.dl_factor) == (job.model, job.noise_reduction_factor), "the source that made it"
    assert dl.instances.count() == conventional.instances.count()
    assert {"read_s", "inference_s", "write_s", "total_s"} <= set(job.timings)
    assert "structure_score" in job.qa and job.difference_image.name.endswith(".png")
    for ours, theirs in zip(conventional.instances.all(), dl.instances.all(), strict=True):
        a, b = storage.read_dataset(ours), storage.read_dataset(theirs)
        assert a.ImagePositionPatient == b.ImagePositionPatient
        assert (a.Rows, a.Columns, a.PixelSpacing) == (b.Rows, b.Columns, b.PixelSpacing)
        assert a.SOPInstanceUID != b.SOPInstanceUID and a.SeriesInstanceUID != b.SeriesInstanceUID
        assert a.StudyInstanceUID == b.StudyInstanceUID
        header_text = str(b).lower()
        assert "ceunet" not in header_text and "enhanc" not in header_text
    before = np.stack([storage.read_dataset(i).pixel_array for i in conventional.instances.all()]).astype(float)
    after = np.stack([storage.read_dataset(i).pixel_array for i in dl.instances.all()]).astype(float)
    tissue = before > 0.1 * np.percentile(before, 99)  # the background's Rayleigh floor is rightly lowered
    assert not np.array_equal(before, after), "a DL version is never a copy of its input"
    assert abs(after[tissue].mean() - before[tissue].mean()) / before[tissue].mean() < 0.05, "no intensity drift"
    assert job.noise_reduction_factor == settings.ENHANCE_FACTOR == inference.DEFAULT_FACTOR


def test_running_a_job_twice_stores_nothing_twice(imported):
    job = enhancement_runner.run_job(t2w_job().pk, device="cpu")
    series_count, files = Series.objects.count(), job.output_series.instances.count()
    again = enhancement_runner.run_job(job.pk, device="cpu")
    assert again.output_series_id == job.output_series_id
    assert Series.objects.count() == series_count
    assert again.output_series.instances.count() == files


def test_failed_job_is_visible_and_retryable(imported, monkeypatch):
    job = t2w_job()

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(enhancement_runner.inference, "enhance_volume", broken)
    with pytest.raises(RuntimeError):
        enhance_series.delay(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "out of memory" in job.error
    assert not Series.objects.filter(version=Version.DL).exists(), "a failed job leaves no half series"

    monkeypatch.undo()
    enhancement.retry_enhancement(job)
    enhancement_runner.run_job(job.pk, device="cpu")
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.attempts == 2 and job.error == ""


def test_the_pinned_model_version_is_used_and_recorded(imported, settings, monkeypatch):
    oldest = inference.shipped_versions()[0]
    settings.ENHANCE_MODEL = oldest
    used = []
    real = enhancement_runner.inference.enhance_volume

    def spy(*args, **kwargs):
        used.append(kwargs["runner"].loaded.model)
        return real(*args, **kwargs)

    monkeypatch.setattr(enhancement_runner.inference, "enhance_volume", spy)
    job = enhancement_runner.run_job(t2w_job().pk, device="cpu")
    assert job.model_version == oldest and job.model.version == oldest and job.model.built_in
    assert used == [inference.load_model(str(inference.weights_path(oldest)), "cpu").model]


@pytest.mark.parametrize("version", ["ceunet-c16-v0", "../../readerstudy/settings", " "])
def test_an_unknown_pinned_model_fails_the_job_visibly(imported, settings, version):
    settings.ENHANCE_MODEL = version
    job = t2w_job()
    with pytest.raises(ValueError):
        enhance_series.delay(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "unknown model version" in job.error
    assert inference.MODEL_VERSION in job.error, "the error lists what ships"
    assert not Series.objects.filter(version=Version.DL).exists()


def test_vendor_series_is_attached_when_geometry_matches(imported, tmp_path):
    conventional = Series.objects.get(sequence=Sequence.T2W)
    job = enhancement_runner.run_job(t2w_job().pk, device="cpu")
    produced = job.output_series
    EnhancementJob.objects.filter(pk=job.pk).update(output_series=None)
    Series.objects.filter(pk=produced.pk).update(conventional=None, dl_model=None, dl_factor=None,
                                                 version=Version.CONVENTIONAL, source=SeriesSource.VENDOR)
    produced.refresh_from_db()
    vendor = vendor_links.attach_vendor_series(conventional, produced)
    assert vendor.source == SeriesSource.VENDOR and vendor.version == Version.DL
    assert dl_versions.dl_version(conventional, dl_versions.VENDOR) == vendor


def test_vendor_series_with_other_geometry_is_refused(imported):
    t2w = Series.objects.get(sequence=Sequence.T2W)
    t1 = Series.objects.get(sequence=Sequence.T1W_POST)
    with pytest.raises(ValueError, match="geometry"):
        vendor_links.attach_vendor_series(t2w, t1)
    assert not t2w.dl_versions.exists()


def test_a_job_never_takes_a_dl_version_made_by_another_model_or_factor(imported, settings):
    """One conventional series, several DL versions: a job of another factor makes its own, a second job of the
    same source makes nothing and takes the one there is."""
    first = enhancement_runner.run_job(t2w_job().pk, device="cpu")
    conventional = first.series
    other = enhancement.request_enhancement(conventional, factor=4.0)
    assert other is not None and other.pk != first.pk
    other = enhancement_runner.run_job(other.pk, device="cpu")
    assert other.output_series_id not in (None, first.output_series_id)
    assert other.output_series.dl_factor == 4.0 and first.output_series.dl_factor == settings.ENHANCE_FACTOR
    assert conventional.dl_versions.count() == 2
    assert other.output_series.series_uid != first.output_series.series_uid
    assert enhancement.request_enhancement(conventional, factor=4.0) is None, "that source has its version"
    again = EnhancementJob.objects.create(series=conventional, noise_reduction_factor=4.0, model=other.model)
    again = enhancement_runner.run_job(again.pk, device="cpu")
    assert again.status == JobStatus.DONE and again.output_series_id is None and "already had" in again.error
    assert conventional.dl_versions.count() == 2


def test_dicom_written_for_dl_is_valid_dicom(imported):
    job = enhancement_runner.run_job(t2w_job().pk, device="cpu")
    instance = job.output_series.instances.first()
    with storage.image_storage().open(instance.file.name, "rb") as stream:
        ds = pydicom.dcmread(stream)
    assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
