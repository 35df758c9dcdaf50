"""A model of one's own, end to end (issue 11, items 1 and 4): an ONNX file made here from a tiny torch network is
registered through the API, named as the deployment's model, and enhances an uploaded series through the real
ingestion and enhancement tasks; the DL pixels are what that network computes, and the DL series records which
model, settings, device and runtime made it, in the database only."""

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from apps.enhancement_models import runtime
from apps.enhancement_models.models import EnhancementModel
from apps.imaging import synthetic
from apps.imaging.models import EnhancementJob, JobStatus, Series, Version
from apps.imaging.services import enhancement, enhancement_runner, storage, uploads
from apps.institutions.services import add_site
from tests.enhancement_models.conftest import register
from tests.enhancement_models.onnx_models import BoxDenoiser, onnx_bytes
from tests.factories import AdminFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SHAPE = (6, 128, 128)
FACTOR = 16.0


@pytest.fixture
def box_model(client) -> EnhancementModel:
    client.force_login(AdminFactory())
    answer = register(client, onnx_bytes(BoxDenoiser()), name="Box denoiser", version="1.0")
    assert answer.status_code == 201, answer.json()
    client.logout()
    return EnhancementModel.objects.get(pk=answer.json()["id"])


def values(series: Series) -> tuple[np.ndarray, list]:
    """The stored pixels in real-world units (RescaleSlope/Intercept applied), with the datasets."""
    datasets = [storage.read_dataset(instance) for instance in series.instances.all()]
    stack = [ds.pixel_array * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
             for ds in datasets]
    return np.stack(stack), datasets


def upload_t2w(tmp_path, django_capture_on_commit_callbacks) -> EnhancementJob:
    north = add_site("north", "North University Hospital")
    patient = synthetic.make_patient(0, index=1, seed=5)
    synthetic.write_study(tmp_path / "upload", patient, synthetic.SITE_PROFILES[0], shape_2d=SHAPE, seed=5,
                          sequences=("T2W",))
    with django_capture_on_commit_callbacks(execute=True):
        uploads.enqueue_processing(uploads.stage_path(north, None, tmp_path / "upload"))
    return EnhancementJob.objects.get()


def test_a_registered_onnx_model_enhances_an_upload_and_the_dl_series_records_its_provenance(
    tmp_path, settings, box_model, django_capture_on_commit_callbacks, one_torch_thread
):
    settings.ENHANCE_MODEL = "Box denoiser@1.0"
    job = upload_t2w(tmp_path, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.DONE, job.error
    assert job.model == box_model and job.model_version == "1.0" and job.noise_reduction_factor == FACTOR
    assert job.device == "cpu" and job.runtime.startswith("onnxruntime ") and "CPUExecutionProvider" in job.runtime
    assert job.run_settings == {"slices": 3, "normalisation": "p99", "max_matrix": 768, "pad_multiple": 1,
                                "context_input": False, "tile": 768}
    conventional, dl = job.series, job.output_series
    assert dl.version == Version.DL and dl.conventional_id == conventional.pk and dl.dl_model == box_model

    # What the network computes: its estimate is the 3x3 mean of the slice (the 99th-percentile scale cancels for
    # a linear model), and in tissue the platform keeps 1/16 of the input's deviation from it.
    before, _ = values(conventional)
    after, after_ds = values(dl)
    estimate = ndimage.uniform_filter(before, size=(1, 3, 3), mode="nearest")
    expected = estimate + (before - estimate) / FACTOR
    tissue = ndimage.binary_erosion(before > 0.3 * np.percentile(before, 99), np.ones((1, 5, 5), bool))
    assert tissue.sum() > 5000
    assert not np.array_equal(after, before)
    assert np.abs(after[tissue] - expected[tissue]).max() <= 1.0  # stored as integers: rounding only
    assert np.abs(after[tissue] - before[tissue]).mean() > 10 * np.abs(after[tissue] - expected[tissue]).mean()

    provenance = enhancement.provenance(dl)
    assert provenance == {
        "job": job.pk, "model": "Box denoiser", "version": "1.0", "sha256": box_model.sha256, "built_in": False,
        "settings": {"noise_reduction_factor": FACTOR, **job.run_settings}, "device": "cpu", "runtime": job.runtime,
    }
    assert box_model.sha256 == hashlib.sha256(box_model.file.open("rb").read()).hexdigest()
    assert enhancement.provenance(conventional) is None
    for ds in after_ds:  # in the database only: nothing of it in the DICOM a reader's viewer gets
        header = str(ds).lower()
        assert "box denoiser" not in header and box_model.sha256 not in header and "onnx" not in header


def test_a_job_runs_the_model_it_names_and_a_tampered_file_is_not_run(
    tmp_path, settings, box_model, django_capture_on_commit_callbacks, monkeypatch, one_torch_thread
):
    monkeypatch.setattr(enhancement, "enqueue", lambda job: None)  # the upload's own job (built-in) is not run
    monkeypatch.setattr(runtime, "_sessions", {})  # no session of this file loaded by an earlier test
    upload_t2w(tmp_path, django_capture_on_commit_callbacks)
    series = Series.objects.get(version=Version.CONVENTIONAL)
    EnhancementJob.objects.all().delete()
    with box_model.file.open("wb") as target:  # the stored file changed behind the registry's back
        target.write(onnx_bytes(BoxDenoiser()) + b"\x00")
    job = enhancement.request_enhancement(series, model=box_model)
    with pytest.raises(RuntimeError, match="registered sha256"):
        enhancement_runner.run_job(job.pk, device="cpu")
    assert not Series.objects.filter(version=Version.DL).exists()
