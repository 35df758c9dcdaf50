"""The factor every job runs at, the residual check's two failures, the hold they put on a pair until a
coordinator of its site or an admin accepts it, and the re-make of identity DL series made before issue 9."""

import io

import numpy as np
import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from scipy import ndimage

from apps.accounts.models import Role
from apps.accounts.services import create_member
from apps.enhancement_models import services as registry
from apps.imaging import synthetic
from apps.imaging.models import EnhancementJob, JobStatus, Sequence, Series, SeriesStatus
from apps.imaging.services import enhancement, enhancement_runner, ingest, storage, uploads
from apps.imaging.services import series as series_service
from apps.institutions.services import add_site
from apps.studies.models import DLSourceKind, ReadingMode, StudyStatus, TaskStatus
from apps.studies.services import definition, reading
from worker.enhance import qa

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def sites():
    return add_site("west", "West Clinic"), add_site("east", "East Hospital")


@pytest.fixture
def t2w(sites, tmp_path) -> Series:
    """One ingested T2W series at a matrix the model is made for (128^2, 6 slices); its job queued, not run."""
    patient = synthetic.make_patient(0, index=1, seed=8)
    synthetic.write_study(tmp_path / "in", patient, synthetic.SITE_PROFILES[0], shape_2d=(6, 128, 128), seed=8,
                          sequences=("T2W",))
    ingest.process_batch(uploads.stage_path(sites[0], None, tmp_path / "in").pk)
    return Series.objects.get(sequence=Sequence.T2W)


def people(sites):
    return {
        "coordinator": create_member("coord-west", "pw-cw", Role.COORDINATOR, sites[0]),
        "other": create_member("coord-east", "pw-ce", Role.COORDINATOR, sites[1]),
        "reader": create_member("reader-east", "pw-re", Role.READER, sites[1]),
    }


def run_identity(series: Series) -> EnhancementJob:
    """The job as issue 9 made it: factor 1, an identity copy."""
    job = series.enhancement_jobs.get()
    job.noise_reduction_factor = 1.0
    job.save(update_fields=["noise_reduction_factor"])
    return enhancement_runner.run_job(job.pk, device="cpu")


def open_study(series: Series, reader, factor: float | None = None) -> object:
    """A study of the series' case; ``factor`` names the default model at that factor as its source (a study of
    the identity copies issue 9 made, which were read at factor 1)."""
    study = definition.create_study("Gate", mode=ReadingMode.PAIRED, readers_per_case=1, sequences=["T2W"])
    if factor is not None:
        definition.set_source(study, DLSourceKind.MODEL, registry.default_model(), factor)
    definition.set_readers(study, [reader])
    definition.set_cases(study, [series.case])
    definition.generate(study)
    return study


def pixels(series: Series) -> np.ndarray:
    return np.stack([storage.read_dataset(i).pixel_array for i in series.instances.all()])


def test_jobs_run_at_the_deployment_factor_and_identity_only_when_asked(sites, tmp_path, settings):
    settings.ENHANCE_FACTOR = 8.0
    folder = tmp_path / "in"
    synthetic.write_study(folder, synthetic.make_patient(0, 1, 3), synthetic.SITE_PROFILES[0], seed=3)
    ingest.process_batch(uploads.stage_path(sites[0], None, folder).pk)
    assert set(EnhancementJob.objects.values_list("noise_reduction_factor", flat=True)) == {8.0}

    series = Series.objects.get(sequence=Sequence.FLAIR)
    series.enhancement_jobs.all().delete()
    series.status = SeriesStatus.READY
    series_service.save_coordinator_changes(series, {"status"})  # a correction queues at the same factor
    assert series.enhancement_jobs.get().noise_reduction_factor == 8.0
    series.enhancement_jobs.all().delete()
    assert enhancement.request_enhancement(series, factor=1.0).noise_reduction_factor == 1.0
    with pytest.raises(ValueError):
        enhancement.request_enhancement(Series.objects.get(sequence=Sequence.T2W), factor=0.5)


def test_identity_fails_no_change_and_is_held_until_its_site_accepts_it(t2w, sites, client):
    users = people(sites)
    job = run_identity(t2w)
    assert job.qa_flagged and job.qa["failures"] == [qa.NO_CHANGE] and job.held_for_review

    client.force_login(users["coordinator"])
    page = client.get("/imaging/enhancement/").content.decode()
    assert "QA failed" in page and "No change" in page and "Not offered for reading until accepted" in page
    body = client.get(f"/api/imaging/enhancement-jobs/{job.pk}/").json()
    assert body["qa_flagged"] and body["held_for_review"] and body["noise_reduction_factor"] == 1.0
    assert body["qa_failures"] == [qa.FAILURE_MESSAGES[qa.NO_CHANGE]]

    study = open_study(t2w, users["reader"], factor=1.0)
    assert study.tasks.count() == 0, "a held pair is not given to readers"
    with pytest.raises(definition.StudyStateError):
        definition.open_for_reading(study)

    client.force_login(users["other"])
    assert client.post(f"/imaging/enhancement/{job.pk}/accept/").status_code == 404
    assert client.post(f"/api/imaging/enhancement-jobs/{job.pk}/accept/").status_code == 404
    client.force_login(users["reader"])
    assert client.post(f"/api/imaging/enhancement-jobs/{job.pk}/accept/").status_code == 403
    job.refresh_from_db()
    assert job.held_for_review

    client.force_login(users["coordinator"])
    response = client.post(f"/api/imaging/enhancement-jobs/{job.pk}/accept/")
    assert response.status_code == 200 and response.json()["qa_accepted_by"] == "coord-west"
    job.refresh_from_db()
    assert not job.held_for_review and job.qa_accepted_by == users["coordinator"] and job.qa_accepted_at
    entry = LogEntry.objects.get_for_object(job).order_by("pk").last()
    assert entry.actor == users["coordinator"] and "qa_accepted_by" in entry.changes_dict
    assert client.post(f"/api/imaging/enhancement-jobs/{job.pk}/accept/").status_code == 400, "only once"

    assert definition.generate(study) == 1, "accepted: now offered for reading"


def test_structured_residual_fails_too_much_change(t2w, monkeypatch, client, sites):
    real = enhancement_runner.inference.enhance_volume
    monkeypatch.setattr(enhancement_runner.inference, "enhance_volume",
                        lambda volume, *a, **k: ndimage.gaussian_filter(real(volume, *a, **k), (0, 2.5, 2.5)))
    job = enhancement_runner.run_job(t2w.enhancement_jobs.get().pk, device="cpu")
    assert job.qa_flagged and qa.STRUCTURED in job.qa["failures"] and qa.NO_CHANGE not in job.qa["failures"]
    client.force_login(people(sites)["coordinator"])
    assert "Too much change: the residual has structure" in client.get("/imaging/enhancement/").content.decode()
    assert enhancement.held_dl_series().filter(pk=job.output_series_id).exists()


def test_an_open_study_does_not_serve_a_task_whose_dl_series_is_held(t2w, sites, client):
    users = people(sites)
    job = enhancement_runner.run_job(t2w.enhancement_jobs.get().pk, device="cpu")
    assert not job.qa_flagged, job.qa
    study = open_study(t2w, users["reader"])
    definition.open_for_reading(study)
    task = study.tasks.get()
    image_url = f"/reading/img/{task.panels.first().image_token}/0.dcm"
    client.force_login(users["reader"])
    assert client.get(image_url).status_code == 200

    EnhancementJob.objects.filter(pk=job.pk).update(qa_flagged=True)  # e.g. a re-make that failed the check
    assert not reading.reader_tasks(users["reader"]).exists()
    assert client.get(image_url).status_code == 404
    assert client.get(f"/api/reading/tasks/{task.token}/").status_code == 404


@pytest.fixture
def inline_worker(monkeypatch):
    """Queued re-makes run at once, as the worker would."""
    monkeypatch.setattr(enhancement, "enqueue", lambda job: enhancement_runner.run_job(job.pk, device="cpu"))


def test_remake_replaces_an_identity_series_in_place_for_tasks_not_opened(
    t2w, sites, inline_worker, django_capture_on_commit_callbacks, client
):
    users = people(sites)
    old_job = run_identity(t2w)
    dl = old_job.output_series
    enhancement.accept_qa(old_job, users["coordinator"])  # as legacy pairs were read: unchecked
    study = open_study(t2w, users["reader"], factor=1.0)
    definition.open_for_reading(study)
    old_files = list(dl.instances.values_list("file", flat=True))
    assert np.array_equal(pixels(t2w), pixels(dl))

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("remake_identity_enhancements", stdout=out)
    assert "1 re-make(s) queued, 0 refused" in out.getvalue()

    new_job = EnhancementJob.objects.get(replaces=dl)
    old_job.refresh_from_db()
    dl.refresh_from_db()
    t2w.refresh_from_db()
    assert new_job.status == JobStatus.DONE and new_job.noise_reduction_factor == 16.0
    assert new_job.output_series_id == dl.pk and dl.conventional_id == t2w.pk, "same row, still paired"
    assert dl.dl_factor == 16.0, "it records the source that re-made it"
    assert old_job.output_series_id is None and f"re-made by job {new_job.pk}" in old_job.error
    assert not new_job.qa_flagged, new_job.qa
    assert not np.array_equal(pixels(t2w), pixels(dl)), "now a real enhancement"
    assert dl.instances.count() == t2w.instances.count()
    assert not any(storage.image_storage().exists(name) for name in old_files), "old files removed"
    assert not enhancement.identity_jobs().exists()

    client.force_login(users["reader"])
    panel = study.tasks.get().panels.get(series=dl)
    assert client.get(f"/reading/img/{panel.image_token}/0.dcm").status_code == 200


def test_remake_refuses_a_series_a_reader_has_opened(t2w, sites, inline_worker):
    users = people(sites)
    old_job = run_identity(t2w)
    enhancement.accept_qa(old_job, users["coordinator"])
    study = open_study(t2w, users["reader"], factor=1.0)
    definition.open_for_reading(study)
    study.tasks.update(status=TaskStatus.OPENED)
    files = list(old_job.output_series.instances.values_list("file", flat=True))

    err = io.StringIO()
    with pytest.raises(CommandError, match="already read"):
        call_command("remake_identity_enhancements", stdout=io.StringIO(), stderr=err)
    assert "has been read in Gate" in err.getvalue()
    old_job.refresh_from_db()
    assert old_job.output_series is not None and not EnhancementJob.objects.filter(replaces__isnull=False).exists()
    assert list(old_job.output_series.instances.values_list("file", flat=True)) == files
    assert study.status == StudyStatus.READING
