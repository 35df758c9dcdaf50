"""The de-identification certificate of an upload (issue 15, item 2): it lists every action taken on a planted-PHI
upload, says what is held, rejected and not done, holds none of the planted values in HTML, JSON or PDF, and only
the upload's site coordinators and admins can read it."""

import html
import io
import json
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from django.urls import reverse
from pypdf import PdfReader

from apps.imaging import deidentify, synthetic
from apps.imaging.models import BatchOutcome, Instance, UploadBatch
from apps.privacy.models import SeriesDeidentification
from apps.privacy.services import evidence
from tests.factories import AdminFactory, CoordinatorFactory, InstitutionFactory, ReaderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_enhancements(monkeypatch):
    from apps.imaging.services import enhancement

    monkeypatch.setattr(enhancement, "enqueue", lambda job: None)


def named(data: bytes, name: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def flagged_burned_in(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    ds.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class PlantedUpload:
    """A planted-PHI study of one patient uploaded through the API: T2W flagged burned-in (held), FLAIR and T1W
    stored, and a text file rejected."""

    def __init__(self, client, tmp_path, capture, site):
        self.patient = synthetic.make_patient(site_index=0, index=7, seed=7)
        files = synthetic.write_study(tmp_path / "incoming", self.patient, seed=7)
        self.files = files
        items = []
        for path in files:
            data = flagged_burned_in(path) if path.parent.name == "01" else path.read_bytes()
            items.append(named(data, f"{path.parent.name}_{path.name}"))
        items.append(named(b"Patient notes " + self.patient.name.encode(), "notes.txt"))
        self.coordinator = CoordinatorFactory(institution=site)
        client.force_login(self.coordinator)
        with capture(execute=True):
            response = client.post(reverse("upload-list"), {"files": items}, format="multipart")
        assert response.status_code == 201, response.content
        self.batch = UploadBatch.objects.get(pk=response.json()["id"])

    def needles(self) -> list[str]:
        values = synthetic.planted_phi_values(self.patient)
        out = set()
        for value in values:
            out |= {value.lower(), value.replace("^", " ").lower()}
        return sorted(out)


@pytest.fixture
def planted(client, tmp_path, django_capture_on_commit_callbacks):
    site = InstitutionFactory(name="North General Hospital", code="north", pseudonym="Site N")
    return PlantedUpload(client, tmp_path, django_capture_on_commit_callbacks, site)


def expected_actions(files: list[Path]) -> dict[str, Counter]:
    """What de-identifying the same files independently does, per attribute: the certificate must list all of it."""
    expected: dict[str, Counter] = {}
    for path in files:
        result = deidentify.deidentify_dataset(pydicom.dcmread(path), case_code="C-X", date_shift_days=-5,
                                               uid_secret="other")
        for (tag, action), n in result.actions.items():
            expected.setdefault(evidence.tag_key(tag), Counter())[action] += n
    return expected


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_certificate_lists_every_action_and_no_planted_value(client, planted):
    batch = planted.batch
    assert batch.state == BatchOutcome.DONE_WITH_REJECTIONS
    api = client.get(reverse("upload-certificate", args=[batch.pk]))
    assert api.status_code == 200 and api["Content-Type"] == "application/json"
    document = api.json()

    # Every action on every attribute of every stored file, with its count, and nothing else.
    records = SeriesDeidentification.objects.filter(batch=batch)
    assert sum(r.instances for r in records) == Instance.objects.count() == batch.accepted_count == len(planted.files)
    listed = {row["tag"]: row["actions"] for row in document["actions"]}
    expected = expected_actions(planted.files)
    assert len(listed) == len(expected)
    for key, counts in expected.items():
        tag = (f"({key[:4]},xxxx)" if int(key[:4], 16) & 1 and key.endswith("FFFF")
               else f"({key[:4]},{key[4:]})")
        assert listed[tag] == dict(counts), tag
    assert listed["(0010,0010)"] == {"pseudonym": len(planted.files)}
    assert listed["(0008,0020)"] == {"date_shifted": len(planted.files)}
    assert any(tag.endswith(",xxxx)") for tag in listed), "private groups are listed"

    # Profile, options with codes, table version and hash, UIDs, dates, holds, rejections, what is not done.
    assert document["profile"]["code"] == "113100"
    assert document["profile"]["table"].endswith(deidentify.ANNEX_E_TABLE)
    assert document["profile"]["table_sha256"] == deidentify.action_table_sha256()
    assert [o["code"] for o in document["options"]] == ["113100", "113105", "113107"]
    assert all(o["instances"] == len(planted.files) for o in document["options"])
    assert "HMAC-SHA256" in document["uids"] and document["dates"]["mode"] == "shift"
    assert document["rejected"] == [{"reason": "not_dicom", "files": 1, "meaning": "not a readable DICOM file"}]
    assert [h["sequence"] for h in document["held"]] == ["T2W"]
    assert "burned-in" in document["held"][0]["why"]
    assert any("Faces are not removed" in line for line in document["not_done"])

    # The stored files declare exactly the codes the certificate names.
    for instance in Instance.objects.all():
        with instance.file.open("rb") as handle:
            header = pydicom.dcmread(handle)
        assert [i.CodeValue for i in header.DeidentificationMethodCodeSequence] == ["113100", "113105", "113107"]

    page = client.get(reverse("privacy:upload_certificate", args=[batch.pk]))
    pdf = client.get(reverse("upload-certificate", args=[batch.pk]) + "?format=pdf")
    page_pdf = client.get(reverse("privacy:upload_certificate", args=[batch.pk]) + "?format=pdf")
    page_json = client.get(reverse("privacy:upload_certificate", args=[batch.pk]) + "?format=json")
    assert page.status_code == pdf.status_code == page_pdf.status_code == page_json.status_code == 200
    assert pdf["Content-Type"] == page_pdf["Content-Type"] == "application/pdf"
    texts = {
        "api json": json.dumps(document, ensure_ascii=False).lower(),
        "page json": page_json.content.decode().lower(),
        "html": html.unescape(page.content.decode()).lower(),
        "pdf": pdf_text(pdf.content).lower(),
        "page pdf": pdf_text(page_pdf.content).lower(),
    }
    for where, text in texts.items():
        leaked = [needle for needle in planted.needles() if needle in text]
        assert not leaked, f"{where} shows planted values {leaked}"
    assert "113107" in texts["pdf"] and "(0010,0010)" in texts["pdf"] and "what is not done" in texts["pdf"]
    assert deidentify.action_table_sha256() in texts["html"].replace("\n", "")
    upload_page = client.get(reverse("imaging:upload_detail", args=[batch.pk])).content.decode()
    assert reverse("privacy:upload_certificate", args=[batch.pk]) in upload_page


def test_only_the_sites_coordinators_and_admins_read_it(client, planted):
    batch = planted.batch
    urls = [reverse("upload-certificate", args=[batch.pk]), reverse("privacy:upload_certificate", args=[batch.pk]),
            reverse("privacy:upload_certificate", args=[batch.pk]) + "?format=pdf",
            reverse("privacy-site-summary", args=[batch.institution.code]),
            reverse("privacy:site_summary", args=[batch.institution.code])]
    for user, allowed in [(planted.coordinator, True), (AdminFactory(), True),
                          (ReaderFactory(institution=batch.institution), False),
                          (CoordinatorFactory(institution=InstitutionFactory()), False)]:
        client.force_login(user)
        for url in urls:
            status = client.get(url).status_code
            if allowed:
                assert status == 200, (user.role, url)
            elif user.role == "reader":
                assert status == 403, (user.role, url)
            else:
                assert status == 404, (user.role, url)
    client.logout()
    assert client.get(urls[1]).status_code == 302


def test_the_site_summary_covers_every_upload_for_the_privacy_office(client, planted):
    client.force_login(planted.coordinator)
    document = client.get(reverse("privacy-site-summary", args=["north"])).json()
    assert [u["id"] for u in document["uploads"]] == [planted.batch.pk]
    assert document["totals"]["stored"] == len(planted.files) and document["totals"]["rejected"] == 1
    assert document["totals"]["series_held_now"] == 1
    text = json.dumps(document).lower()
    pdf = client.get(reverse("privacy:site_summary", args=["north"]) + "?format=pdf")
    assert pdf.status_code == 200
    for where, body in {"json": text, "pdf": pdf_text(pdf.content).lower()}.items():
        assert not [n for n in planted.needles() if n in body], where
    assert client.get(reverse("privacy:index")).status_code == 200


def test_the_action_table_is_served_with_the_hash_the_certificate_names(client):
    client.force_login(AdminFactory())
    body = client.get(reverse("privacy-action-table")).json()
    canonical = json.dumps(body["table"], sort_keys=True, separators=(",", ":")).encode()
    import hashlib

    assert hashlib.sha256(canonical).hexdigest() == body["sha256"] == deidentify.action_table_sha256()
    assert body["table"]["actions"]["(0010,1040)"] == "X"  # Patient's Address
