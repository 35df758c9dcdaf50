"""The C-STORE entry point: a real pynetdicom SCU sends to the SCP on 127.0.0.1, and the association's upload
goes through the ordinary staging and ingestion."""

import io
import logging
import time
from pathlib import Path

import pydicom
import pytest
from django.core.management import CommandError, call_command
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification

from apps.imaging import dicom_network
from apps.imaging.models import (
    BatchOutcome,
    Case,
    DicomNode,
    FileOutcome,
    Instance,
    Series,
    UploadBatch,
)
from apps.imaging.services import enhancement, uploads
from apps.institutions.services import add_site
from apps.jobs.models import JobStatus
from tests.imaging.dicom_samples import write_patient_study

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "SCANNER1"
FINAL = (JobStatus.DONE, JobStatus.FAILED)


@pytest.fixture
def site():
    return add_site("north", "North General Hospital")


@pytest.fixture
def node(site):
    return dicom_network.register_node(SENDER, site)


@pytest.fixture(autouse=True)
def no_enhancement(monkeypatch):
    """Ingestion queues DL enhancement on commit; these tests are about receiving, not enhancing."""
    monkeypatch.setattr(enhancement, "enqueue", lambda job: None)


@pytest.fixture
def scp_port():
    server = dicom_network.StorageSCP("READERSTUDY").start("127.0.0.1", 0)
    yield server.server_address[1]
    server.shutdown()


def associate(port: int, ae_title: str = SENDER, sop_class: str = MRImageStorage):
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title="READERSTUDY")


def wait_for_batch(seconds: float = 60) -> UploadBatch:
    """The association's batch once processed; release returns before the SCP has finished with it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = UploadBatch.objects.filter(channel="c-store", status__in=FINAL).first()
        if batch is not None:
            return batch
        time.sleep(0.1)
    raise AssertionError("the C-STORE batch was not processed in time")


def study_files(tmp_path: Path, seed: int = 3) -> tuple[list[Path], list[str]]:
    folder, planted = write_patient_study(tmp_path / f"study{seed}", seed=seed)
    return sorted(p for p in folder.rglob("*") if p.is_file()), planted


def garbage_file(path: Path) -> Path:
    """Valid file meta (so the SCU can send it) followed by bytes that are no dataset at all."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta)
    path.write_bytes(buffer.getvalue() + b"this is not a DICOM data set, only text " * 4)
    return path


def test_a_study_sent_by_c_store_is_staged_as_one_batch_and_ingested(node, scp_port, tmp_path, settings, caplog):
    caplog.set_level(logging.DEBUG)
    files, planted = study_files(tmp_path)
    assoc = associate(scp_port)
    assert assoc.is_established
    statuses = [assoc.send_c_store(pydicom.dcmread(path)).Status for path in files]
    assoc.release()

    assert statuses == [0x0000] * len(files)
    batch = wait_for_batch()
    assert UploadBatch.objects.count() == 1
    assert batch.channel == "c-store" and batch.institution == node.institution
    assert batch.state == BatchOutcome.DONE, list(batch.results.values_list("reason", "message"))
    assert batch.file_count == batch.accepted_count == len(files)
    assert Case.objects.filter(institution=node.institution).count() == 1
    assert Series.objects.count() == 3 and Instance.objects.count() == len(files)
    assert not uploads.staging_dir(batch).exists()
    assert all(name.endswith(".dcm") and name[:6].isdigit() for name in batch.results.values_list("name", flat=True))
    stored = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert len(stored) == len(files)
    for value in planted:
        for needle in {value, value.upper(), value.replace(" ", "^")}:
            assert needle not in caplog.text, f"planted {needle!r} found in the log"
            for path in stored:
                assert needle.encode() not in path.read_bytes(), f"planted {needle!r} found in {path.name}"


def test_c_echo_from_a_registered_node(node, scp_port):
    assoc = associate(scp_port)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert not UploadBatch.objects.exists()


def test_an_unknown_calling_ae_title_is_rejected(node, scp_port):
    assoc = associate(scp_port, ae_title="STRANGER")
    assert assoc.is_rejected
    assert assoc.acceptor.primitive.diagnostic == 0x03
    assert not UploadBatch.objects.exists()


def test_a_node_pinned_to_another_host_is_rejected(site, scp_port):
    dicom_network.register_node(SENDER, site, allowed_host="10.11.12.13")
    assoc = associate(scp_port)
    assert assoc.is_rejected


def test_garbage_is_refused_with_cannot_understand_and_recorded(node, scp_port, tmp_path, monkeypatch):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    files, _ = study_files(tmp_path)
    assoc = associate(scp_port)
    good = assoc.send_c_store(files[0])
    bad = assoc.send_c_store(garbage_file(tmp_path / "garbage.dcm"))
    assoc.release()

    assert good.Status == 0x0000
    assert bad.Status == dicom_network.CANNOT_UNDERSTAND
    assert bad.ErrorComment.startswith("not_dicom")
    batch = wait_for_batch()
    assert batch.state == BatchOutcome.DONE_WITH_REJECTIONS
    assert batch.file_count == 2 and batch.accepted_count == 1 and batch.rejected_count == 1
    rejected = batch.results.get(outcome=FileOutcome.REJECTED)
    assert rejected.reason == "not_dicom" and rejected.name == "000002.dcm"


def test_a_decodable_but_unusable_instance_gets_its_outcome_from_ingestion(node, scp_port, tmp_path):
    files, _ = study_files(tmp_path)
    ds = pydicom.dcmread(files[0])
    del ds.PixelData
    assoc = associate(scp_port)
    status = assoc.send_c_store(ds)
    assoc.release()

    assert status.Status == 0x0000
    batch = wait_for_batch()
    assert list(batch.results.values_list("outcome", "reason")) == [(FileOutcome.REJECTED, "no_pixel_data")]


def test_a_data_set_of_another_sop_class_than_its_context_is_refused(node, scp_port, tmp_path, monkeypatch):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    files, _ = study_files(tmp_path)
    ds = pydicom.dcmread(files[0])
    ds.SOPClassUID = CTImageStorage
    ds.save_as(tmp_path / "mismatch.dcm")  # the file meta still says MR, so the SCU offers it as MR
    assoc = associate(scp_port)
    status = assoc.send_c_store(tmp_path / "mismatch.dcm")
    assoc.release()

    assert status.Status == dicom_network.SOP_CLASS_MISMATCH_STATUS
    batch = wait_for_batch()
    assert list(batch.results.values_list("reason", flat=True)) == ["sop_class_mismatch"]


def test_an_oversized_data_set_is_refused(node, scp_port, tmp_path, settings):
    settings.INGEST_MAX_FILE_BYTES = 2048
    files, _ = study_files(tmp_path)
    assoc = associate(scp_port)
    status = assoc.send_c_store(pydicom.dcmread(files[0]))
    assoc.release()

    assert status.Status == dicom_network.TOO_LARGE_STATUS
    batch = wait_for_batch()
    assert batch.state == BatchOutcome.REJECTED, "its only file was rejected: nothing stored"
    assert list(batch.results.values_list("reason", flat=True)) == ["too_large"]
    assert not Instance.objects.exists()


def test_an_aborted_association_still_processes_what_arrived(node, scp_port, tmp_path):
    files, _ = study_files(tmp_path)
    series_files = [p for p in files if p.parent.name == "01"]
    assoc = associate(scp_port)
    for path in series_files:
        assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0x0000
    assoc.abort()

    batch = wait_for_batch()
    assert batch.state == BatchOutcome.DONE
    assert batch.accepted_count == len(series_files)
    assert Series.objects.count() == 1


def test_add_dicom_node_command(site):
    out = io.StringIO()
    call_command("add_dicom_node", "PACS_NORTH", site=site.code, host="10.0.0.7", stdout=out)
    node = DicomNode.objects.get(ae_title="PACS_NORTH")
    assert node.institution == site and node.allowed_host == "10.0.0.7"
    assert "PACS_NORTH" in out.getvalue()
    with pytest.raises(CommandError, match="Unknown site"):
        call_command("add_dicom_node", "OTHER", site="nowhere")
    with pytest.raises(CommandError, match="AE title"):
        call_command("add_dicom_node", "A_TITLE_FAR_TOO_LONG", site=site.code)
