"""A study's DL source (issue 11, items 2 and 4): a study that names a registered model queues that model's jobs
when it is opened, refuses to open while pairs are missing (API 409 and the admin action, each naming the case and
sequence), opens once the worker made them, and its readers get that model's DL version, not the deployment
default's, which the same series also has. Its source cannot change once reading has begun, and its exports name
it. Everything runs through the real paths: the registration API, ingestion, the Celery task of queue "gpu"."""

import io

import numpy as np
import pydicom
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from pypdf import PdfReader
from scipy import ndimage

from apps.enhancement_models.models import EnhancementModel
from apps.imaging import synthetic
from apps.imaging.models import EnhancementJob, JobStatus, Series, Version
from apps.imaging.services import dl_versions, ingest, storage, uploads
from apps.institutions.services import add_site
from apps.studies.models import DLSourceKind, ReaderStudy, StudyStatus
from apps.studies.services import definition
from tests.enhancement_models.conftest import register
from tests.enhancement_models.onnx_models import BoxDenoiser, onnx_bytes
from tests.factories import AdminFactory, ReaderFactory
from worker.enhancement import enhance_series

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SHAPE = (6, 128, 128)
FACTOR = 16.0


@pytest.fixture
def admin(client):
    user = AdminFactory()
    client.force_login(user)
    return user


@pytest.fixture
def box_model(client, admin) -> EnhancementModel:
    answer = register(client, onnx_bytes(BoxDenoiser()), name="Box denoiser", version="1.0")
    assert answer.status_code == 201, answer.json()
    return EnhancementModel.objects.get(pk=answer.json()["id"])


@pytest.fixture
def uploaded(tmp_path):
    """One T2W series of a North patient, ingested as an upload is; its default job queued, not run yet."""
    north = add_site("north", "North University Hospital")
    east = add_site("east", "East Regional")
    patient = synthetic.make_patient(0, index=1, seed=5)
    synthetic.write_study(tmp_path / "upload", patient, synthetic.SITE_PROFILES[0], shape_2d=SHAPE, seed=5,
                          sequences=("T2W",))
    ingest.process_batch(uploads.stage_path(north, None, tmp_path / "upload").pk)
    conventional = Series.objects.get(version=Version.CONVENTIONAL)
    return conventional, ReaderFactory(institution=east, username="reader-east", pseudonym="R1")


def values(series: Series) -> np.ndarray:
    datasets = [storage.read_dataset(instance) for instance in series.instances.all()]
    return np.stack([ds.pixel_array * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
                     for ds in datasets])


def test_a_study_on_a_registered_model_makes_its_pairs_on_opening_and_reads_them(
    client, admin, box_model, uploaded, django_capture_on_commit_callbacks, one_torch_thread
):
    conventional, reader = uploaded
    default_job = EnhancementJob.objects.get()
    assert default_job.model is None, "on upload: the deployment's default, chosen when it runs"
    enhance_series.delay(job_id=default_job.pk)  # the worker runs the upload's job: the default's DL version
    default_job.refresh_from_db()
    assert default_job.status == JobStatus.DONE and default_job.model.built_in, default_job.error

    created = client.post("/api/reading/studies/", {
        "title": "Box model", "sequences": ["T2W"], "mode": "paired", "readers_per_case": 1, "min_distance": 1,
        "dl_source": "model", "dl_model": box_model.pk, "dl_factor": FACTOR,
    }, content_type="application/json")
    assert created.status_code == 201, created.content
    study = ReaderStudy.objects.get(pk=created.json()["id"])
    assert "Box denoiser 1.0 at noise-reduction factor 16" in created.json()["dl_source_description"]
    definition.set_readers(study, [reader])
    definition.set_cases(study, [conventional.case])
    assert definition.generate(study) == 0, "the default's pair is not this study's"

    # Opening queues the model's job (on commit, queue "gpu") and refuses, naming the case and sequence.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        refused = client.post(f"/api/reading/studies/{study.pk}/open/")
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert "cannot open" in body["detail"] and f"{conventional.case.code} T2W" in body["detail"]
    assert "enhancement job queued" in body["detail"] and "Box denoiser 1.0" in body["detail"]
    job = EnhancementJob.objects.get(model=box_model)
    assert body["pending"] == [{"case": conventional.case.code, "sequence": "T2W", "status": "queued",
                                "detail": f"job {job.pk}", "job": job.pk}]
    assert job.series == conventional and job.noise_reduction_factor == FACTOR and job.status == JobStatus.QUEUED
    assert len(queued) == 1
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT

    # Asked again while the job waits: the same refusal, no second job. The admin action says the same.
    assert client.post(f"/api/reading/studies/{study.pk}/open/").status_code == 409
    response = client.post(reverse("admin:studies_readerstudy_changelist"),
                           {"action": "open_for_reading", "_selected_action": [study.pk]}, follow=True)
    text = "\n".join(str(m) for m in get_messages(response.wsgi_request))
    assert "cannot open" in text and f"{conventional.case.code} T2W" in text, text
    assert EnhancementJob.objects.filter(model=box_model).count() == 1

    for callback in queued:  # the GPU worker takes the job
        callback()
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.error
    # A 3x3 mean leaves edges in the residual: the check holds the pair, and the study waits for someone to accept.
    assert job.qa_flagged and job.held_for_review, job.qa
    held = client.post(f"/api/reading/studies/{study.pk}/open/")
    assert held.status_code == 409 and held.json()["pending"][0]["status"] == "held_qa", held.content
    assert "residual check" in held.json()["detail"]
    assert client.post(f"/api/imaging/enhancement-jobs/{job.pk}/accept/").status_code == 200

    opened = client.post(f"/api/reading/studies/{study.pk}/open/")
    assert opened.status_code == 200, opened.content
    study.refresh_from_db()
    assert study.status == StudyStatus.READING and study.dl_model == box_model and study.dl_factor == FACTOR
    ours = dl_versions.dl_version(conventional, dl_versions.DLSource(box_model, FACTOR))
    theirs = default_job.output_series
    assert ours == job.output_series and ours != theirs and conventional.dl_versions.count() == 2
    task = study.tasks.get()
    assert {panel.series for panel in task.panels.all()} == {conventional, ours}

    # The reader's DL images are the box model's computation, not the default model's.
    client.force_login(reader)
    body = client.get(f"/api/reading/tasks/{task.token}/").json()
    dl_panel = task.panels.get(series=ours).panel
    urls = next(p["image_urls"] for p in body["panels"] if p["panel"] == dl_panel)
    served = np.stack([_real(pydicom.dcmread(_bytes(client.get(url)))) for url in urls])
    before = values(conventional)
    estimate = ndimage.uniform_filter(before, size=(1, 3, 3), mode="nearest")
    expected = estimate + (before - estimate) / FACTOR
    tissue = ndimage.binary_erosion(before > 0.3 * np.percentile(before, 99), np.ones((1, 5, 5), bool))
    assert served.shape == before.shape and tissue.sum() > 5000
    assert np.abs(served[tissue] - expected[tissue]).max() <= 1.0
    assert np.abs(served[tissue] - values(theirs)[tissue]).mean() > 1.0, "not the default model's pixels"


def _bytes(response):
    assert response.status_code == 200
    return io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content)


def _real(ds) -> np.ndarray:
    return ds.pixel_array * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)


def test_the_source_cannot_change_once_reading_has_begun_and_exports_name_it(client, admin, box_model, uploaded):
    conventional, reader = uploaded
    study = definition.create_study("Source", mode="paired", readers_per_case=1, sequences=["T2W"])
    definition.set_source(study, DLSourceKind.MODEL, box_model, 8.0)
    changed = client.patch(f"/api/reading/studies/{study.pk}/", {"dl_factor": 4.0}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["dl_factor"] == 4.0, "a draft's source may change"
    dl = Series.objects.create(  # the model's version, as the worker makes it (its pixels are not the point here)
        case=conventional.case, series_uid="2.25.1", study_uid=conventional.study_uid, sequence="T2W",
        version=Version.DL, source="enhanced", rows=conventional.rows, columns=conventional.columns,
    )
    for instance in conventional.instances.all():
        dl.instances.create(sop_uid=f"2.25.9{instance.pk}", slice_location=instance.slice_location,
                            file=instance.file.name, size=instance.size, sha256=instance.sha256)
    dl_versions.link(conventional, dl, dl_versions.DLSource(box_model, 4.0))
    definition.set_readers(study, [reader])
    definition.set_cases(study, [conventional.case])
    definition.open_for_reading(study)

    for body in ({"dl_source": "vendor", "dl_model": None, "dl_factor": None}, {"dl_factor": 16.0},
                 {"dl_model": None, "dl_source": "default"}):
        refused = client.patch(f"/api/reading/studies/{study.pk}/", body, content_type="application/json")
        assert refused.status_code == 409, refused.content
        assert "cannot change once reading has begun" in refused.json()["detail"]
        assert "Box denoiser 1.0 at noise-reduction factor 4" in refused.json()["detail"]
    with pytest.raises(definition.SourceLocked, match="once reading has begun"):
        definition.set_source(study, DLSourceKind.VENDOR)
    study.refresh_from_db()
    assert (study.dl_source, study.dl_model, study.dl_factor) == (DLSourceKind.MODEL, box_model, 4.0)

    tail = ["dl_source", "dl_model", "dl_model_sha256", "dl_factor"]
    expected = ["model", "Box denoiser@1.0", box_model.sha256, "4.0"]
    for kind in ("long", "wide", "assignment", "rois", "score_audit"):
        lines = b"".join(client.get(f"/api/analysis/studies/{study.pk}/exports/{kind}/").streaming_content)
        header, *rows = lines.decode().splitlines()
        names = header.split(",")
        at = names.index("dl_source")  # after every earlier column; only the session columns follow
        assert names[at:] in (tail, [*tail, "session", "version_order"]), kind
        for row in rows:
            assert row.split(",")[at:at + 4] == expected, (kind, row)
    rows = b"".join(client.get(f"/api/analysis/studies/{study.pk}/exports/assignment/").streaming_content)
    assert len(rows.decode().splitlines()) == 2


def test_cases_appended_to_an_open_study_need_their_pairs_from_its_source_first(world):
    """An open study reads the default source; a new case whose T2W has no DL version from it is refused (its job
    queued) until the version exists, then appended. A DL version of another factor does not count."""
    from apps.imaging.models import SeriesSource
    from tests.factories import CaseFactory, InstanceFactory, SeriesFactory, link_dl

    study = world.study
    before = study.tasks.count()
    case = CaseFactory(institution=world.sites[0])
    conventional = SeriesFactory(case=case, sequence="T2W")
    InstanceFactory(series=conventional, index=0)
    other_factor = SeriesFactory(case=case, sequence="T2W", version=Version.DL, source=SeriesSource.ENHANCED)
    default = dl_versions.default_source()
    link_dl(conventional, other_factor, dl_versions.DLSource(default.model, 2.0))
    with pytest.raises(definition.PairsNotReady, match=f"enhancement job queued for the GPU worker: {case.code} T2W"):
        definition.append_cases(study, [case])
    assert study.tasks.count() == before and case not in study.cases.all()
    job = EnhancementJob.objects.get(series=conventional)
    assert (job.model, job.noise_reduction_factor, job.status) == (default.model, default.factor, JobStatus.QUEUED)

    dl = SeriesFactory(case=case, sequence="T2W", version=Version.DL, source=SeriesSource.ENHANCED)
    InstanceFactory(series=dl, index=0)
    link_dl(conventional, dl)
    assert definition.append_cases(study, [case]) == 2
    assert {p.series for t in study.tasks.filter(case=case) for p in t.panels.all()} == {conventional, dl}


def test_the_report_names_the_studys_dl_source(world, client):
    """The study report (HTML and PDF) says which model, version, factor and file made its DL images."""
    from apps.analysis import services
    from tests.analysis.world import read

    read(world)
    source = dl_versions.default_source()
    _, meta = services.analyse_study(world.study)
    expected = f"DL images: {source} (the deployment's default); model file sha256 {source.model.sha256}."
    assert expected in meta.notes
    client.force_login(AdminFactory())
    html = client.get(reverse("analysis:study_report", args=[world.study.pk])).content.decode()
    assert f"{source}" in html and source.model.sha256 in html
    pdf = client.get(reverse("analysis:study_report_pdf", args=[world.study.pk]))
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "DL images:" in " ".join(text.split()) and source.model.sha256[:16] in text.replace("\n", "")
