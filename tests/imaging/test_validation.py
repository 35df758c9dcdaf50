"""Per-file validation never raises and names a stable reason; compressed syntaxes scanners send decode."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from apps.imaging import synthetic, validation

from .jpeg_encoding import to_jpeg_baseline, to_jpeg_lossless


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    patient = synthetic.make_patient(0, 2, seed=3)
    files = synthetic.write_study(
        tmp_path_factory.mktemp("good"), patient, seed=3, sequences=("T2W",)
    )
    return files[0]


def _variant(good_file: Path, tmp_path: Path, change) -> Path:
    ds = pydicom.dcmread(good_file)
    change(ds)
    path = tmp_path / "variant.dcm"
    ds.save_as(path, enforce_file_format=False)
    return path


def _reason(path: Path, **kwargs) -> str | None:
    outcome = validation.read_instance(path, **kwargs)
    assert (outcome.rejection is None) == outcome.ok == (outcome.dataset is not None)
    return outcome.rejection.reason if outcome.rejection else None


def test_a_good_file_is_accepted_with_its_summary(good_file):
    outcome = validation.read_instance(good_file)
    assert outcome.ok
    summary = outcome.summary
    assert (summary.rows, summary.columns, summary.frames, summary.modality) == (64, 64, 1, "MR")
    assert summary.sop_uid == outcome.dataset.SOPInstanceUID
    assert summary.patient_id.startswith("PID")


def test_not_dicom(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not an image\n" * 20)
    assert _reason(text) == validation.NOT_DICOM
    assert _reason(tmp_path / "missing.dcm") == validation.NOT_DICOM
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    assert _reason(empty) == validation.NOT_DICOM


def test_too_large(good_file):
    assert _reason(good_file, max_bytes=100) == validation.TOO_LARGE


@pytest.mark.parametrize("keep", [0.5, 0.98, 200 / 2500])
def test_truncated(good_file, tmp_path, keep):
    data = good_file.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: max(int(len(data) * keep), 140)])
    assert _reason(cut) == validation.TRUNCATED


def test_file_ending_inside_an_element_header_is_truncated(good_file, tmp_path):
    cut = tmp_path / "header_cut.dcm"
    cut.write_bytes(good_file.read_bytes() + b"\xfc\xff\xfc")
    assert _reason(cut) == validation.TRUNCATED


def test_truncated_compressed_file(good_file, tmp_path):
    ds = pydicom.dcmread(good_file)
    ds.compress(RLELossless)
    whole = tmp_path / "rle.dcm"
    ds.save_as(whole)
    cut = tmp_path / "rle_cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-300])
    assert _reason(cut) == validation.TRUNCATED


def test_no_pixel_data(good_file, tmp_path):
    assert _reason(_variant(good_file, tmp_path, lambda ds: delattr(ds, "PixelData"))) == validation.NO_PIXEL_DATA


def test_not_mr(good_file, tmp_path):
    def to_ct(ds):
        ds.Modality = "CT"

    outcome = validation.read_instance(_variant(good_file, tmp_path, to_ct))
    assert outcome.rejection.reason == validation.NOT_MR
    assert "CT" in outcome.rejection.message


@pytest.mark.parametrize(
    "change",
    [
        {"Rows": 2, "Columns": 512},
        {"Rows": 8192, "Columns": 8},
        {"NumberOfFrames": 5000},
        {"BitsAllocated": 32, "BitsStored": 32, "HighBit": 31},
        {"BitsStored": 20},
        {"SamplesPerPixel": 4},
    ],
    ids=["rows", "huge", "frames", "bits", "stored", "samples"],
)
def test_absurd_dimensions(good_file, tmp_path, change):
    def apply(ds):
        for keyword, value in change.items():
            setattr(ds, keyword, value)

    assert _reason(_variant(good_file, tmp_path, apply)) == validation.ABSURD_DIMENSIONS


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"])
def test_missing_uid(good_file, tmp_path, keyword):
    assert _reason(_variant(good_file, tmp_path, lambda ds: delattr(ds, keyword))) == validation.MISSING_UID


def test_invalid_uid(good_file, tmp_path):
    def corrupt(ds):
        ds.SOPInstanceUID = "1.2.abc.4"

    assert _reason(_variant(good_file, tmp_path, corrupt)) == validation.MISSING_UID


def test_undecodable_pixels_list_every_decoder(good_file, tmp_path):
    def garbage(ds):
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 this is not a jpeg stream"])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit

    outcome = validation.read_instance(_variant(good_file, tmp_path, garbage))
    assert outcome.rejection.reason == validation.UNDECODABLE_PIXELS
    assert "pillow:" in outcome.rejection.message and "pylibjpeg:" in outcome.rejection.message


def test_file_without_preamble_is_accepted(good_file, tmp_path):
    ds = pydicom.dcmread(good_file)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(buffer.getvalue())
    outcome = validation.read_instance(bare)
    assert outcome.ok, outcome.rejection
    assert outcome.summary.transfer_syntax == ImplicitVRLittleEndian


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=lambda s: s.name
)
def test_compressed_transfer_syntaxes_decode(tmp_path, syntax):
    patient = synthetic.make_patient(1, 4, seed=9)
    files = synthetic.write_study(
        tmp_path, patient, seed=9, sequences=("FLAIR",), transfer_syntax=syntax
    )
    outcome = validation.read_instance(files[0])
    assert outcome.ok, outcome.rejection
    assert outcome.summary.transfer_syntax == syntax


@pytest.mark.parametrize("encode", [to_jpeg_baseline, to_jpeg_lossless], ids=["jpeg_baseline", "jpeg_lossless"])
def test_jpeg_transfer_syntaxes_decode(good_file, tmp_path, encode):
    original = pydicom.dcmread(good_file).pixel_array
    outcome = validation.read_instance(_variant(good_file, tmp_path, encode))
    assert outcome.ok, outcome.rejection
    decoded = outcome.dataset.pixel_array
    assert decoded.shape == original.shape
    if encode is to_jpeg_lossless:
        assert np.array_equal(decoded, original)


def _summary(sop: str, series: str = "1.2.3", patient: str = "P1", rows: int = 64) -> validation.InstanceSummary:
    return validation.InstanceSummary(patient, "1.2", series, sop, "1.2.840.10008.5.1.4.1.1.4", "MR", rows, 64, 1,
                                      ExplicitVRLittleEndian)


def test_check_series_keyed_like_a_mapping():
    files = {
        "a": _summary("1.1"),
        "b": _summary("1.1"),
        "c": _summary("1.2", rows=128),
        "d": _summary("1.3"),
        "e": _summary("2.1", series="9.9", patient="P1"),
        "f": _summary("2.2", series="9.9", patient="P2"),
    }
    problems = validation.check_series(files)
    assert {key: p.reason for key, p in problems.items()} == {
        "b": validation.DUPLICATE_IN_UPLOAD,
        "c": validation.INCONSISTENT_GEOMETRY,
        "e": validation.MIXED_PATIENTS,
        "f": validation.MIXED_PATIENTS,
    }


def test_check_series_on_datasets_keyed_by_sop_uid(good_file):
    first = pydicom.dcmread(good_file)
    copy = pydicom.dcmread(good_file)
    other = pydicom.dcmread(good_file)
    other.SOPInstanceUID = "1.2.3.4.5.6"
    other.PatientID = "SOMEONE-ELSE"
    problems = validation.check_series([first, copy, other])
    assert problems[first.SOPInstanceUID].reason == validation.DUPLICATE_IN_UPLOAD
    assert problems["1.2.3.4.5.6"].reason == validation.MIXED_PATIENTS
