"""Upload to reader, through the product's own path: a noisy synthetic series is ingested by the real worker
task, enhanced by the real enhancement task with the shipped model on CPU, and served to a reader blinded.

The DL series must be a real enhancement (issue 9: every DL series was a pixel copy at factor 1): clearly less
noise inside tissue, the same tissue mean, the same geometry, and headers a reader cannot tell apart.
"""

import numpy as np
import pytest
from scipy import ndimage

from apps.accounts.models import Role
from apps.accounts.services import create_member
from apps.imaging import synthetic
from apps.imaging.models import EnhancementJob, JobStatus, Series, Version
from apps.imaging.services import storage, uploads
from apps.institutions.services import add_site
from apps.studies.models import ReadingMode
from apps.studies.services import definition
from tests.studies.test_blinding import assert_images_alike

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SHAPE = (6, 128, 128)


def _stack(series: Series) -> tuple[np.ndarray, list]:
    datasets = [storage.read_dataset(instance) for instance in series.instances.all()]
    return np.stack([ds.pixel_array.astype(float) for ds in datasets]), datasets


def homogeneous_tissue(volume: np.ndarray) -> np.ndarray:
    """Bright tissue away from edges: inside the signal, where the smoothed image's gradient is in its lowest
    third, so what varies there is noise and not anatomy."""
    smooth = ndimage.gaussian_filter(volume, (0, 2, 2))
    gradient = np.hypot(*np.gradient(smooth, axis=(1, 2)))
    tissue = ndimage.binary_erosion(volume > 0.3 * np.percentile(volume, 99), np.ones((1, 5, 5), bool))
    return tissue & (gradient < np.percentile(gradient[tissue], 33))


def noise_level(volume: np.ndarray, region: np.ndarray) -> float:
    """Median |Laplacian| in the region: the noise, since the region holds no edges."""
    laplacian = np.stack([ndimage.laplace(plane) for plane in volume])
    return float(np.median(np.abs(laplacian[region])))


def test_upload_to_reader_gives_a_real_enhancement_served_blinded(
    tmp_path, client, django_capture_on_commit_callbacks, one_torch_thread
):
    north, east = add_site("north", "North University Hospital"), add_site("east", "East Regional")
    reader = create_member("reader-east", "pw-reader-east", Role.READER, east)
    patient = synthetic.make_patient(0, index=1, seed=5)
    synthetic.write_study(tmp_path / "upload", patient, synthetic.SITE_PROFILES[0], shape_2d=SHAPE, seed=5,
                          sequences=("T2W",))

    # As `import_dicom` does: stage, queue the ingestion task on commit; ingestion queues enhancement on commit.
    with django_capture_on_commit_callbacks(execute=True):
        uploads.enqueue_processing(uploads.stage_path(north, None, tmp_path / "upload"))

    job = EnhancementJob.objects.get()
    assert job.status == JobStatus.DONE, job.error
    assert job.noise_reduction_factor == 16.0 and job.device == "cpu"
    assert not job.qa_flagged and job.qa["failures"] == [], job.qa
    conventional = job.series
    dl = job.output_series
    assert dl.version == Version.DL and dl.conventional_id == conventional.pk

    before, before_ds = _stack(conventional)
    after, after_ds = _stack(dl)
    assert before.shape == after.shape == SHAPE
    for a, b in zip(before_ds, after_ds, strict=True):
        assert (a.Rows, a.Columns) == (b.Rows, b.Columns)
        assert list(a.PixelSpacing) == list(b.PixelSpacing) and a.SliceThickness == b.SliceThickness
        assert list(a.ImagePositionPatient) == list(b.ImagePositionPatient)
        assert list(a.ImageOrientationPatient) == list(b.ImageOrientationPatient)
    region = homogeneous_tissue(before)
    assert region.sum() > 2000, "enough homogeneous tissue to measure"
    noise_ratio = noise_level(after, region) / noise_level(before, region)
    mean_bias = after[region].mean() / before[region].mean() - 1.0
    print(f"noise ratio {noise_ratio:.3f}, tissue mean bias {mean_bias:+.4f}, voxels {int(region.sum())}")
    assert noise_ratio < 0.6, f"noise inside tissue only fell to {noise_ratio:.2f} of the conventional's"
    assert abs(mean_bias) < 0.02, f"tissue mean moved by {mean_bias:+.2%}"
    # A plausible magnitude image: no pile-up at exactly 0 (a clip to 0 once put a fifth of DL pixels there).
    assert (after == 0).mean() <= (before == 0).mean() + 0.01

    study = definition.create_study("E2E", mode=ReadingMode.PAIRED, readers_per_case=1, min_distance=1,
                                    sequences=["T2W"])
    definition.set_readers(study, [reader])
    definition.set_cases(study, [conventional.case])
    assert definition.generate(study) == 1
    definition.open_for_reading(study)

    client.force_login(reader)
    body = client.get(f"/api/reading/tasks/{study.tasks.get().token}/").json()
    urls = {panel["panel"]: panel["image_urls"] for panel in body["panels"]}
    assert len(urls) == 2 and all(len(u) == SHAPE[0] for u in urls.values())
    for url_a, url_b in zip(urls["A"], urls["B"], strict=True):
        image_a, image_b = client.get(url_a), client.get(url_b)
        assert image_a.status_code == image_b.status_code == 200
        assert_images_alike(image_a, image_b)  # identical headers and sizes, different pixels
