"""Clean Recognizable Visual Features (issue 15, item 5): faces and ears cut from 3D head series for the sites that
ask for it, by a head-geometry rule that never reaches the brain, identically in the conventional and the DL series.

Measured on the brain phantom with a face and ears added (``apps.privacy.face_phantom``): no voxel of the phantom's
brain mask is touched, the face is removed; then through the product's own path: a site with the setting uploads,
the stored instances are defaced and declare 113102, the DL version has the very same voxels cut, and a reader gets
both versions defaced alike.
"""

import io

import numpy as np
import pydicom
import pytest

from apps.imaging import deidentify, synthetic
from apps.imaging.models import EnhancementJob, JobStatus, Series, Version
from apps.imaging.services import storage
from apps.privacy import defacing, face_phantom
from apps.privacy.models import SeriesDefacing
from apps.studies.models import ReadingMode, TaskPanel
from apps.studies.services import definition
from tests.privacy.test_deny_by_default import site_asking, upload_folder
from tests.studies.test_blinding import assert_images_alike

pytestmark = pytest.mark.django_db

SHAPE = (48, 96, 96)  # 3.1 mm slices, 2.4 mm pixels: a 3D T1W slab of 150 mm


def deface_files(files) -> defacing.Defacing:
    datasets = sorted((pydicom.dcmread(p) for p in files), key=storage.slice_location)
    volume = np.stack([ds.pixel_array for ds in datasets]).astype(np.float32)
    coords = defacing.voxel_coordinates(
        np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets]),
        np.array([float(v) for v in datasets[0].ImageOrientationPatient]),
        [float(v) for v in datasets[0].PixelSpacing], volume.shape)
    return defacing.deface(volume, coords)


@pytest.mark.parametrize("site_index", [0, 1, 2])
def test_defacing_touches_no_brain_voxel_of_the_phantom_and_removes_the_face(tmp_path, site_index):
    patient = synthetic.make_patient(site_index, index=1, seed=5)
    phantom = face_phantom.write_face_series(tmp_path, patient, SHAPE, seed=5)
    result = deface_files(phantom.files)
    brain = phantom.model.brain_mask
    face_removed = (result.mask & phantom.face).sum() / phantom.face.sum()
    ears_removed = (result.mask & phantom.ears).sum() / phantom.ears.sum()
    scalp_removed = (result.mask & phantom.model.head_mask & ~brain).sum() / (phantom.model.head_mask & ~brain).sum()
    print(f"site {site_index}: face {face_removed:.3f}, ears {ears_removed:.3f}, scalp and skull {scalp_removed:.3f}, "
          f"brain estimate covers {(result.brain_estimate & brain).sum() / brain.sum():.4f} of the brain, "
          f"{result.seconds:.2f} s")
    assert brain.sum() > 10_000
    assert not (result.mask & brain).any(), "a brain voxel was cut"
    assert face_removed >= 0.9
    assert ears_removed >= 0.7
    assert scalp_removed < 0.02  # the cut keeps to the face and ears: the rest of the head stays


def test_a_volume_too_thin_for_a_head_is_refused_with_a_reason(tmp_path):
    patient = synthetic.make_patient(0, index=1, seed=5)
    files = synthetic.write_study(tmp_path, patient, seed=5, sequences=("T1W_POST",))[:4]
    with pytest.raises(defacing.DefacingError, match="a head needs 60"):
        deface_files(files)


def stored_volume(series: Series) -> tuple[np.ndarray, list[pydicom.Dataset]]:
    datasets = [storage.read_dataset(i) for i in series.instances.order_by("slice_location")]
    return np.stack([ds.pixel_array for ds in datasets]), datasets


def test_a_site_that_asks_gets_its_3d_head_series_defaced_in_both_versions_through_the_upload_path(
    tmp_path, client, django_capture_on_commit_callbacks, one_torch_thread
):
    site, coordinator, reader = site_asking(deface_3d_head=True)
    patient = synthetic.make_patient(0, index=1, seed=5)
    phantom = face_phantom.write_face_series(tmp_path / "upload" / "t1", patient, SHAPE, seed=5)
    synthetic.write_study(tmp_path / "upload" / "t2", patient, seed=5, sequences=("T2W",))
    uploaded = np.stack([pydicom.dcmread(p).pixel_array for p in phantom.files])  # IM0001.. inferior to superior

    batch = upload_folder(site, coordinator, tmp_path / "upload", django_capture_on_commit_callbacks)
    assert batch.accepted_count == SHAPE[0] + 12 and batch.rejected_count == 0
    t1 = Series.objects.get(version=Version.CONVENTIONAL, sequence="T1W_POST")
    t2 = Series.objects.get(version=Version.CONVENTIONAL, sequence="T2W")

    # Stored conventional: face and ears cut, brain exactly as uploaded, 113102 declared; the 2D T2W untouched.
    cut = SeriesDefacing.objects.get(series=t1)
    mask = defacing.unpack(cut.mask, tuple(cut.shape))
    assert not SeriesDefacing.objects.filter(series=t2).exists()
    stored, datasets = stored_volume(t1)
    assert stored.shape == SHAPE and cut.removed_voxels == int(mask.sum()) > 0
    assert (stored[mask] == 0).all()
    assert np.array_equal(stored[~mask], uploaded[~mask])
    assert not (mask & phantom.model.brain_mask).any()
    assert (mask & phantom.face).sum() / phantom.face.sum() >= 0.9
    assert (uploaded[phantom.face] > 0).all() and (stored[phantom.face] == 0).mean() >= 0.9
    for ds in datasets:
        assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100", "113102", "113105",
                                                                                      "113107"]
    t2_codes = {item.CodeValue for i in t2.instances.all()
                for item in storage.read_dataset(i).DeidentificationMethodCodeSequence}
    assert deidentify.CLEAN_RECOGNIZABLE_VISUAL_FEATURES not in t2_codes

    # Its DL version: made from the defaced images, and the very same voxels cut (the conventional values there).
    job = EnhancementJob.objects.get(series=t1)
    assert job.status == JobStatus.DONE, job.error
    dl_volume, dl_datasets = stored_volume(job.output_series)
    assert (dl_volume[mask] == 0).all()
    assert not np.array_equal(dl_volume[~mask], stored[~mask])  # a real enhancement elsewhere
    assert [item.CodeValue for item in dl_datasets[0].DeidentificationMethodCodeSequence] == ["113100", "113102",
                                                                                             "113105", "113107"]

    # The certificate counts the option on the series' images.
    client.force_login(coordinator)
    options = {o["code"]: o for o in client.get(f"/api/imaging/uploads/{batch.pk}/certificate/").json()["options"]}
    assert options["113102"]["instances"] == SHAPE[0]

    # A reader gets both versions defaced alike: the same voxels at the lowest value, headers alike.
    study = definition.create_study("Faces", mode=ReadingMode.PAIRED, readers_per_case=1, min_distance=1,
                                    sequences=["T1W_POST"])
    definition.set_readers(study, [reader])
    definition.set_cases(study, [t1.case])
    assert definition.generate(study) == 1
    definition.open_for_reading(study)
    client.force_login(reader)
    task = study.tasks.get()
    panels = {p["panel"]: p["image_urls"] for p in client.get(f"/api/reading/tasks/{task.token}/").json()["panels"]}
    served = {}
    for name, urls in panels.items():
        responses = [client.get(url) for url in urls]
        served[name] = np.stack([pydicom.dcmread(io.BytesIO(r.content)).pixel_array for r in responses])
        served[f"{name}-responses"] = responses
    for image_a, image_b in zip(served["A-responses"], served["B-responses"], strict=True):
        assert_images_alike(image_a, image_b)
    assert {TaskPanel.objects.get(task=task, panel=p).series_id for p in "AB"} == {t1.pk, job.output_series_id}
    for name in "AB":
        assert (served[name][mask] == 0).all()
        assert (served[name][phantom.face] == 0).mean() >= 0.9
