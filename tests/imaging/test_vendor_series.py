"""Vendor-enhanced series (issue 10, item 5; issue 11, item 3): a series a vendor's DL software made from a
conventional one (ImageType DERIVED\\SECONDARY, a derivation naming DL enhancement, same study and geometry) is
never enhanced and never offered as conventional. On ingest it is linked by itself as the vendor DL version of the one
conventional series it matches (in whichever order the two arrive; the Source Image references tell apart series of
equal geometry); one that matches several, or none, is held with its reason, and a coordinator links it on the Cases
page or with `POST /api/imaging/series/<conventional id>/attach-vendor/`. A study whose DL source is the vendor
series reads those pairs, blinded: no vendor tell reaches its readers."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from pydicom.uid import generate_uid

from apps.accounts.models import Role
from apps.accounts.services import create_member
from apps.imaging import synthetic
from apps.imaging.models import (
    BatchOutcome,
    Case,
    EnhancementJob,
    JobStatus,
    Series,
    SeriesSource,
    SeriesStatus,
    UploadBatch,
    Version,
)
from apps.imaging.services import dl_versions, enhancement, enhancement_runner, uploads
from apps.imaging.services import vendor as vendor_links
from apps.institutions.services import add_site
from apps.privacy import text_corpus
from apps.studies.models import DLSourceKind, ReadingMode
from apps.studies.services import definition
from tests.studies.test_blinding import assert_images_alike

pytestmark = pytest.mark.django_db

VENDOR_TELLS = [b"AIR Recon", b"DERIVED", b"SECONDARY", b"Deep learning", b"deep-learning", b"Denoised", b"99VENDOR"]


@pytest.fixture
def world(tmp_path):
    north, east = add_site("north", "North University Hospital"), add_site("east", "East Regional")
    patient = synthetic.make_patient(0, index=1, seed=5)
    conventional = synthetic.write_study(tmp_path / "conventional", patient, seed=5, sequences=("T2W",))
    vendor = synthetic.write_vendor_enhanced(conventional, tmp_path / "vendor" / "01")
    return {
        "north": north, "east": east, "patient": patient, "tmp": tmp_path,
        "conventional": tmp_path / "conventional", "vendor": tmp_path / "vendor", "vendor_files": vendor,
        "coordinator": create_member("coordinator-north", "pw-coordinator-north", Role.COORDINATOR, north),
        "reader": create_member("reader-east", "pw-reader-east", Role.READER, east),
    }


@pytest.fixture
def no_engine(monkeypatch):
    """Enhancement jobs are created as on upload but not run (the model is not what these tests are about)."""
    monkeypatch.setattr(enhancement, "enqueue", lambda job: None)


def upload(world, folder: Path, capture) -> UploadBatch:
    """As `import_dicom` does: stage, and run the real ingestion task (and what it queues) on commit."""
    with capture(execute=True):
        batch = uploads.stage_path(world["north"], world["coordinator"], folder)
        uploads.enqueue_processing(batch)
    batch.refresh_from_db()
    return batch


def vendor_series() -> Series:
    return Series.objects.get(source=SeriesSource.VENDOR)


def the_conventional() -> Series:
    return Series.objects.get(version=Version.CONVENTIONAL)


def attach(client, conventional_id, body):
    return client.post(
        reverse("series-attach-vendor", args=[conventional_id]), body, content_type="application/json"
    )


def repeat_series(files, out_dir: Path) -> list[Path]:
    """The same acquisition stored again as another series of the same study (new series and instance UIDs):
    a second conventional series of equal geometry and sequence."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(files):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[ds.SeriesInstanceUID, "repeat"])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SOPInstanceUID, "repeat"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = int(ds.SeriesNumber) + 50
        ds.save_as(out_dir / path.name)
        written.append(out_dir / path.name)
    return written


def without_references(files) -> None:
    """A vendor series that does not say which images it was made from."""
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.SourceImageSequence
        ds.save_as(path)


@pytest.fixture
def no_auto_link(monkeypatch):
    """Ingestion as before automatic linking: every vendor series stays held (for the manual link's refusals)."""
    monkeypatch.setattr(vendor_links, "link_held_vendor_series", lambda series, batch=None: [])


def test_a_vendor_series_matching_one_conventional_series_is_linked_on_ingest_and_never_enhanced(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    batch = upload(world, world["tmp"], django_capture_on_commit_callbacks)  # both series in one upload

    assert Series.objects.count() == 2
    vendor, conventional = vendor_series(), the_conventional()
    assert vendor.version == Version.DL and vendor.status == SeriesStatus.READY and vendor.hold_reason == ""
    assert vendor.conventional == conventional and vendor.sequence == conventional.sequence == "T2W"
    assert dl_versions.dl_version(conventional, dl_versions.VENDOR) == vendor
    assert vendor.dl_model is None and vendor.dl_factor is None
    # Only the conventional series is enhanced (the deployment's default source): one job, none for the vendor's.
    assert list(EnhancementJob.objects.values_list("series_id", flat=True)) == [conventional.pk]

    # The upload says what happened to each file of it.
    assert batch.state == BatchOutcome.DONE and batch.held_count == 0
    linked = batch.results.filter(reason=vendor_links.LINKED_REASON)
    assert linked.count() == len(world["vendor_files"])
    assert f"linked as the vendor DL version of conventional series {conventional.pk}" in linked.first().message
    assert "references it" in linked.first().message
    client.force_login(world["coordinator"])
    api = client.get(reverse("series-detail", args=[conventional.pk])).json()
    assert [v["id"] for v in api["dl_versions"]] == [vendor.pk]
    assert api["dl_versions"][0]["dl_source"] == dl_versions.VENDOR_LABEL
    assert client.get(reverse("series-detail", args=[vendor.pk])).json()["conventional"] == conventional.pk


def test_a_vendor_series_arriving_first_is_linked_when_its_conventional_series_arrives(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    upload(world, world["vendor"], django_capture_on_commit_callbacks)
    vendor = vendor_series()
    assert vendor.status == SeriesStatus.HELD_VENDOR and "AIR Recon DL" in vendor.hold_reason
    assert "no conventional series of the same study, geometry and sequence is stored (yet)" in vendor.hold_reason
    batch = upload(world, world["conventional"], django_capture_on_commit_callbacks)
    vendor.refresh_from_db()
    assert vendor.status == SeriesStatus.READY and vendor.conventional == the_conventional()
    assert batch.state == BatchOutcome.DONE
    assert not EnhancementJob.objects.filter(series=vendor).exists()


def test_an_ambiguous_vendor_series_is_held_with_its_reason_and_linked_on_the_cases_page(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    """Two conventional series of the same study, geometry and sequence, and a vendor series that names neither:
    held, saying which match; the Cases page offers both, and its form links through the attach-vendor API."""
    repeat_series(sorted(world["conventional"].rglob("*.dcm")), world["tmp"] / "repeat")
    without_references(world["vendor_files"])
    batch = upload(world, world["tmp"], django_capture_on_commit_callbacks)

    vendor = vendor_series()
    first, second = Series.objects.filter(version=Version.CONVENTIONAL).order_by("pk")
    assert vendor.status == SeriesStatus.HELD_VENDOR and vendor.conventional is None
    assert "AIR Recon DL" in vendor.hold_reason and "DERIVED" in vendor.hold_reason
    assert f"2 conventional series match it in study, geometry and sequence (series {first.pk}, {second.pk})" in \
        vendor.hold_reason
    assert sorted(EnhancementJob.objects.values_list("series_id", flat=True)) == [first.pk, second.pk]
    assert batch.state == BatchOutcome.DONE_WITH_HOLDS
    held = batch.results.filter(reason="held_vendor")
    assert held.count() == len(world["vendor_files"]) and "vendor" in held.first().message.lower()

    client.force_login(world["coordinator"])
    api = client.get(reverse("series-detail", args=[vendor.pk])).json()
    assert api["status"] == "held_vendor" and api["hold_reason"] == vendor.hold_reason
    assert api["link_candidates"] == [first.pk, second.pk]
    for page in ("imaging:case_list", "imaging:job_list"):
        text = client.get(reverse(page)).content.decode()
        assert "AIR Recon DL" in text and "Held: vendor-enhanced" in text, page
        assert f'<form class="vendor-link" data-vendor="{vendor.pk}">' in text, page
        assert f'<option value="{second.pk}">series {second.pk}' in text and "/attach-vendor/" in text, page

    assert attach(client, second.pk, {"vendor_series": vendor.pk}).status_code == 200  # what the form sends
    vendor.refresh_from_db()
    assert vendor.status == SeriesStatus.READY and vendor.conventional == second and vendor.hold_reason == ""
    assert 'class="vendor-links"' not in client.get(reverse("imaging:case_list")).content.decode(), "none held"


def test_a_vendor_series_held_for_burned_in_text_is_linked_once_its_text_is_blanked(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    first = sorted(world["vendor_files"])[0]
    ds = pydicom.dcmread(first)
    mask = text_corpus.text_mask(ds.pixel_array.shape, "DOE JANE 1961-03-14", "sans", 11, "bottom-left",
                                 np.random.default_rng(1))
    ds.PixelData = text_corpus.burn(ds.pixel_array, mask, "bright").astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(first)
    upload(world, world["tmp"], django_capture_on_commit_callbacks)
    vendor, conventional = vendor_series(), the_conventional()
    assert vendor.status == SeriesStatus.HELD_BURNED_IN and vendor.conventional is None

    client.force_login(world["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("privacy-series-text-blank", args=[vendor.pk]))
    assert answer.status_code == 200, answer.content
    vendor.refresh_from_db()
    assert vendor.status == SeriesStatus.READY and vendor.version == Version.DL and vendor.hold_reason == ""
    assert dl_versions.dl_version(conventional, dl_versions.VENDOR) == vendor
    assert not EnhancementJob.objects.filter(series=vendor).exists()


def test_the_source_image_references_tell_equal_series_apart(
    world, no_engine, django_capture_on_commit_callbacks
):
    """The repeat acquisition arrives first, then the original, then the vendor series made from the original:
    both match in geometry and sequence; its Source Image Sequence (remapped as the originals' UIDs were) decides."""
    repeat_series(sorted(world["conventional"].rglob("*.dcm")), world["tmp"] / "repeat")
    upload(world, world["tmp"] / "repeat", django_capture_on_commit_callbacks)
    upload(world, world["conventional"], django_capture_on_commit_callbacks)
    repeat, original = Series.objects.filter(version=Version.CONVENTIONAL).order_by("pk")
    batch = upload(world, world["vendor"], django_capture_on_commit_callbacks)

    vendor = vendor_series()
    assert vendor.status == SeriesStatus.READY and vendor.conventional == original, vendor.hold_reason
    assert vendor_links._geometry(repeat) == vendor_links._geometry(original) == vendor_links._geometry(vendor)
    assert "references it as its source" in batch.results.first().message


def test_study_generation_never_reads_a_vendor_series_as_conventional(
    world, django_capture_on_commit_callbacks
):
    """The vendor series arrives first (lower id), then the conventional one; the engine runs on what it queues.
    A study of the deployment's default source reads the engine's version, never the vendor series."""
    upload(world, world["vendor"], django_capture_on_commit_callbacks)
    upload(world, world["conventional"], django_capture_on_commit_callbacks)

    vendor, conventional = vendor_series(), the_conventional()
    assert vendor.pk < conventional.pk and vendor.conventional == conventional
    job = EnhancementJob.objects.get()
    assert job.series == conventional and job.status == JobStatus.DONE, job.error
    if job.held_for_review:  # the residual check is strict on the tiny test phantom; a coordinator accepts it
        enhancement.accept_qa(job, world["coordinator"])
    study = definition.create_study("Vendor", mode=ReadingMode.SINGLE, readers_per_case=1, min_distance=1,
                                    sequences=["T2W"])
    definition.set_readers(study, [world["reader"]])
    definition.set_cases(study, [conventional.case])
    assert definition.generate(study) == 2
    shown = {panel.series for task in study.tasks.all() for panel in task.panels.all()}
    assert shown == {conventional, job.output_series}
    assert vendor not in shown


def test_a_vendor_study_reads_the_vendor_pair_blinded_and_the_engine_version_stays(
    world, client, django_capture_on_commit_callbacks
):
    upload(world, world["tmp"], django_capture_on_commit_callbacks)  # linked on ingest, engine job run too
    vendor, conventional = vendor_series(), the_conventional()
    engine_dl = EnhancementJob.objects.get(series=conventional).output_series
    assert engine_dl is not None and engine_dl.source == SeriesSource.ENHANCED
    assert set(conventional.dl_versions.all()) == {vendor, engine_dl}, "one DL version per source"
    assert engine_dl.status == SeriesStatus.READY

    study = definition.create_study("Vendor pair", mode=ReadingMode.PAIRED, readers_per_case=1, sequences=["T2W"])
    definition.set_source(study, DLSourceKind.VENDOR)
    definition.set_readers(study, [world["reader"]])
    definition.set_cases(study, [conventional.case])
    definition.open_for_reading(study)
    task = study.tasks.get()
    assert {panel.series for panel in task.panels.all()} == {conventional, vendor}

    client.force_login(world["reader"])
    body = client.get(f"/api/reading/tasks/{task.token}/").json()
    urls = {panel["panel"]: panel["image_urls"] for panel in body["panels"]}
    assert len(urls["A"]) == len(urls["B"]) == len(world["vendor_files"])
    for url_a, url_b in zip(urls["A"], urls["B"], strict=True):
        image_a, image_b = client.get(url_a), client.get(url_b)
        assert image_a.status_code == image_b.status_code == 200
        assert_images_alike(image_a, image_b)
        for tell in VENDOR_TELLS:
            assert tell not in image_a.content and tell not in image_b.content


def test_a_vendor_study_refuses_to_open_without_its_vendor_series(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    upload(world, world["conventional"], django_capture_on_commit_callbacks)
    conventional = the_conventional()
    study = definition.create_study("Vendor only", mode=ReadingMode.PAIRED, readers_per_case=1, sequences=["T2W"])
    definition.set_source(study, DLSourceKind.VENDOR)
    definition.set_readers(study, [world["reader"]])
    definition.set_cases(study, [conventional.case])
    with pytest.raises(definition.PairsNotReady, match=f"no vendor-enhanced series linked: {conventional.case.code} T2W"):
        definition.open_for_reading(study)
    assert not EnhancementJob.objects.exclude(model__isnull=True).exists(), "nothing to run for the vendor source"


def test_attach_refuses_what_is_not_a_matching_pair(world, client, no_engine, no_auto_link,
                                                     django_capture_on_commit_callbacks, tmp_path):
    other = synthetic.make_patient(0, index=2, seed=5)
    other_t2w = synthetic.write_study(tmp_path / "other" / "study", other, seed=5, sequences=("T2W",))
    synthetic.write_vendor_enhanced(other_t2w, tmp_path / "other" / "vendor")
    t1 = synthetic.write_study(tmp_path / "t1" / "study", world["patient"], seed=5, sequences=("T1W_POST",))
    synthetic.write_vendor_enhanced(t1, tmp_path / "t1" / "vendor", product="Deep Resolve")
    upload(world, world["tmp"], django_capture_on_commit_callbacks)
    client.force_login(world["coordinator"])
    vendors = Series.objects.filter(source=SeriesSource.VENDOR)
    assert vendors.count() == 3
    case = Case.objects.get(series__sequence="T1W_POST", series__version=Version.CONVENTIONAL)
    conventional = case.series.get(sequence="T2W", version=Version.CONVENTIONAL)
    own_vendor = vendors.get(case=conventional.case, sequence="T2W")
    t1_vendor = vendors.get(sequence="T1W_POST")
    other_vendor = vendors.exclude(case=conventional.case).get()

    def refused(target, body, words):
        response = attach(client, target, body)
        assert response.status_code == 400, response.content
        assert words in str(response.json()), response.json()

    refused(conventional.pk, {"vendor_series": other_vendor.pk}, "another study")
    refused(conventional.pk, {"vendor_series": t1_vendor.pk}, "geometry")
    refused(conventional.pk, {}, "required")
    refused(conventional.pk, {"vendor_series": "abc"}, "integer")
    refused(conventional.pk, [own_vendor.pk], "must be an object")
    refused(conventional.pk, {"vendor_series": 10**9}, "No such series")
    refused(own_vendor.pk, {"vendor_series": conventional.pk}, "conventional")
    refused(conventional.pk, {"vendor_series": conventional.pk}, "its own")
    assert all(v.status == SeriesStatus.HELD_VENDOR and v.conventional_id is None for v in vendors.all())

    assert attach(client, conventional.pk, {"vendor_series": own_vendor.pk}).status_code == 200
    refused(conventional.pk, {"vendor_series": own_vendor.pk}, "already")
    # In the audit trail, by the coordinator: the vendor series released and linked.
    entries = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Series), object_id=own_vendor.pk)
    changes = {}
    for entry in entries.filter(actor=world["coordinator"]).order_by("pk"):
        changes.update(entry.changes_dict)
    assert changes["status"] == ["held_vendor", "ready"] and changes["conventional"][1] == str(conventional)

    client.force_login(world["reader"])
    assert attach(client, conventional.pk, {"vendor_series": own_vendor.pk}).status_code == 403
    other_site = create_member("coordinator-east", "pw-coordinator-east", Role.COORDINATOR, world["east"])
    client.force_login(other_site)
    assert attach(client, conventional.pk, {"vendor_series": own_vendor.pk}).status_code == 404


def test_a_job_running_when_the_vendor_series_is_linked_still_makes_its_own_version(
    world, no_engine, no_auto_link, django_capture_on_commit_callbacks
):
    """The vendor's version and the model's are two sources: linking one never stops or replaces the other."""
    upload(world, world["tmp"], django_capture_on_commit_callbacks)
    vendor, conventional = vendor_series(), the_conventional()
    job = EnhancementJob.objects.get(series=conventional)
    assert job.status == JobStatus.QUEUED  # queued for the worker, which claims it after the link
    vendor_links.attach_vendor_series(conventional, vendor)

    job = enhancement_runner.run_job(job.pk, device="cpu")

    assert job.status == JobStatus.DONE and job.output_series is not None, job.error
    assert job.output_series.source == SeriesSource.ENHANCED and job.output_series.conventional == conventional
    assert set(conventional.dl_versions.all()) == {vendor, job.output_series}


def detach(client, vendor_id):
    return client.post(reverse("series-detach-vendor", args=[vendor_id]))


def test_a_wrong_link_is_undone_held_again_and_not_linked_by_itself_again(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    upload(world, world["tmp"], django_capture_on_commit_callbacks)
    vendor, conventional = vendor_series(), the_conventional()
    assert vendor.conventional == conventional

    client.force_login(world["reader"])
    assert detach(client, vendor.pk).status_code == 403
    client.force_login(create_member("coordinator-east", "pw-coordinator-east", Role.COORDINATOR, world["east"]))
    assert detach(client, vendor.pk).status_code == 404, "another site's series is not found"
    client.force_login(world["coordinator"])
    assert b"Linked vendor-enhanced series" in client.get(reverse("imaging:case_list")).content
    assert detach(client, conventional.pk).status_code == 409, "a conventional series has no vendor link to undo"

    answer = detach(client, vendor.pk)
    assert answer.status_code == 200, answer.content
    vendor.refresh_from_db()
    assert vendor.status == SeriesStatus.HELD_VENDOR and vendor.conventional is None
    assert vendor.hold_reason.startswith(f"{vendor_links.UNLINKED} {conventional.pk}")
    assert dl_versions.dl_version(conventional, dl_versions.VENDOR) is None
    page = client.get(reverse("imaging:case_list")).content.decode()
    assert f'data-vendor="{vendor.pk}"' in page and "Vendor-enhanced series waiting to be linked" in page
    assert LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Series), object_id=str(vendor.pk),
        changes__icontains="conventional").count() >= 2, "link and unlink are both in the audit trail"

    # What runs after every later series of the study is stored does not redo the link the coordinator undid.
    assert vendor_links.link_held_vendor_series(conventional) == []
    vendor.refresh_from_db()
    assert vendor.conventional is None and vendor.status == SeriesStatus.HELD_VENDOR

    # Linked by hand to the series it was made from, it is read again.
    assert attach(client, conventional.pk, {"vendor_series": vendor.pk}).status_code == 200
    vendor.refresh_from_db()
    assert vendor.conventional == conventional and vendor.status == SeriesStatus.READY and vendor.hold_reason == ""


def test_a_link_that_a_study_reads_cannot_be_undone(world, client, no_engine, django_capture_on_commit_callbacks):
    upload(world, world["tmp"], django_capture_on_commit_callbacks)
    vendor, conventional = vendor_series(), the_conventional()
    study = definition.create_study("Vendor pair", mode=ReadingMode.PAIRED, readers_per_case=1, sequences=["T2W"])
    definition.set_source(study, DLSourceKind.VENDOR)
    definition.set_readers(study, [world["reader"]])
    definition.set_cases(study, [conventional.case])
    definition.open_for_reading(study)

    client.force_login(world["coordinator"])
    answer = detach(client, vendor.pk)
    assert answer.status_code == 409 and "Vendor pair" in answer.json()["detail"]
    vendor.refresh_from_db()
    assert vendor.conventional == conventional and vendor.status == SeriesStatus.READY


def without_vendor_tells(files) -> None:
    """A vendor series whose header says nothing of its making: as an original acquisition, no derivation."""
    for path in files:
        ds = pydicom.dcmread(path)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        for keyword in ("DerivationDescription", "DerivationCodeSequence", "SoftwareVersions"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.SeriesDescription = "AX T2"
        ds.save_as(path)


def upload_through_api(client, files, **fields) -> UploadBatch:
    streams = [open(path, "rb") for path in sorted(files)]  # noqa: SIM115 (closed below)
    try:
        answer = client.post(reverse("upload-list"), {"files": streams, **fields}, format="multipart")
    finally:
        for stream in streams:
            stream.close()
    assert answer.status_code == 201, answer.content
    return UploadBatch.objects.get(pk=answer.json()["id"])


@pytest.mark.parametrize("said", [True, False])
def test_the_coordinator_says_on_upload_that_the_files_are_vendor_output(
    world, client, no_engine, django_capture_on_commit_callbacks, said
):
    without_vendor_tells(world["vendor_files"])
    client.force_login(world["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        upload_through_api(client, world["conventional"].rglob("*.dcm"))
    with django_capture_on_commit_callbacks(execute=True):
        batch = upload_through_api(client, world["vendor_files"], **({"vendor_output": "true"} if said else {}))
    assert batch.vendor_output is said
    made = Series.objects.get(instances__sop_uid__in=batch.results.values_list("instance__sop_uid", flat=True)[:1])
    first = Series.objects.exclude(pk=made.pk).get()
    if said:
        assert (made.version, made.source, made.conventional) == (Version.DL, SeriesSource.VENDOR, first)
        assert dl_versions.dl_version(first, dl_versions.VENDOR) == made
        assert not EnhancementJob.objects.filter(series=made).exists(), "a vendor series is never enhanced again"
    else:  # nothing in the header and no word from the coordinator: another conventional series, as before
        assert (made.version, made.source, made.conventional) == (Version.CONVENTIONAL, SeriesSource.UPLOADED, None)


def test_the_upload_page_offers_the_vendor_choice_and_passes_it_on(world, client, no_engine):
    client.force_login(world["coordinator"])
    page = client.get(reverse("imaging:upload_list")).content.decode()
    assert 'name="vendor_output"' in page and "DL-enhanced output" in page
    with open(sorted(world["vendor_files"])[0], "rb") as stream:
        answer = client.post(reverse("imaging:upload_create"), {"files": [stream], "vendor_output": "on"},
                             HTTP_ACCEPT="application/json")
    assert answer.status_code == 201, answer.content
    assert UploadBatch.objects.get(pk=answer.json()["id"]).vendor_output is True


def test_a_vendor_series_identical_to_its_conventional_series_is_not_linked(
    world, client, no_engine, django_capture_on_commit_callbacks
):
    """The conventional series uploaded a second time and marked as vendor output: nothing to compare, so neither the
    automatic link nor a coordinator's link makes it a pair."""
    client.force_login(world["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        upload_through_api(client, world["conventional"].rglob("*.dcm"))
    again = repeat_series(world["conventional"].rglob("*.dcm"), world["tmp"] / "again")
    with django_capture_on_commit_callbacks(execute=True):
        upload_through_api(client, again, vendor_output="true")
    vendor, conventional = vendor_series(), the_conventional()
    assert vendor.status == SeriesStatus.HELD_VENDOR and vendor.conventional is None
    assert f"(nearly) identical to conventional series {conventional.pk}" in vendor.hold_reason
    assert dl_versions.dl_version(conventional, dl_versions.VENDOR) is None

    answer = attach(client, conventional.pk, {"vendor_series": vendor.pk})
    assert answer.status_code == 400 and "nothing to compare" in str(answer.json()["vendor_series"])
    vendor.refresh_from_db()
    assert vendor.conventional is None and vendor.status == SeriesStatus.HELD_VENDOR


def test_a_vendor_series_whose_face_was_cut_differently_is_not_linked(
    world, client, no_engine, no_auto_link, django_capture_on_commit_callbacks
):
    """Where a site removes faces, a vendor series is cut by its own pixels at upload, so its cut may differ from its
    conventional series' cut; side by side that would tell the versions apart, so such a pair is never made."""
    import zlib

    from apps.privacy.models import SeriesDefacing

    upload(world, world["tmp"], django_capture_on_commit_callbacks)
    vendor, conventional = vendor_series(), the_conventional()
    shape = [conventional.instances.count(), conventional.rows, conventional.columns]
    cut = dict(method="test cut", shape=shape, removed_voxels=10, face_plane=[0, 0, 0], ear_planes=[0, 0], seconds=0)
    SeriesDefacing.objects.create(series=conventional, mask=zlib.compress(b"\x01" * 8), **cut)
    client.force_login(world["coordinator"])

    answer = attach(client, conventional.pk, {"vendor_series": vendor.pk})
    assert answer.status_code == 400 and "cut differently" in str(answer.json()["vendor_series"])
    vendor.refresh_from_db()
    assert vendor.conventional is None and vendor.status == SeriesStatus.HELD_VENDOR

    SeriesDefacing.objects.create(series=vendor, mask=zlib.compress(b"\x01" * 8), **cut)  # the very same cut
    assert attach(client, conventional.pk, {"vendor_series": vendor.pk}).status_code == 200
