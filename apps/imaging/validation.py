"""Validation of uploaded DICOM files, one file at a time and then per series.

``read_instance`` never raises: every failure becomes a ``Rejection`` with a stable reason code (stored by
the caller) and a human-readable message that names no header value beyond technical ones (sizes,
modality, transfer syntax), so it is safe to log and to show. Identifiers are read inside the guarded block
because pydicom decodes element values lazily: a corrupt element fails where it is first touched.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar, overload

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

logger = logging.getLogger(__name__)

NOT_DICOM = "not_dicom"
TRUNCATED = "truncated"
NO_PIXEL_DATA = "no_pixel_data"
UNDECODABLE_PIXELS = "undecodable_pixels"
NOT_MR = "not_mr"
ABSURD_DIMENSIONS = "absurd_dimensions"
MISSING_UID = "missing_uid"
TOO_LARGE = "too_large"
MIXED_PATIENTS = "mixed_patients"
DUPLICATE_IN_UPLOAD = "duplicate_in_upload"
INCONSISTENT_GEOMETRY = "inconsistent_geometry"

MIN_MATRIX = 8
MAX_MATRIX = 4096
MAX_FRAMES = 2048
BITS_ALLOCATED = (8, 16)
SAMPLES_PER_PIXEL = (1, 3)
DEFAULT_MAX_BYTES = 2 * 1024**3
MR_MODALITY = "MR"

_UNDEFINED_LENGTH = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_ELEMENT_HEADER_BYTES = 8


class Rejection(NamedTuple):
    """Why a file was refused: a stable code to store and a sentence for the coordinator."""

    reason: str
    message: str


class InstanceSummary(NamedTuple):
    """The identifiers and geometry the ingestion needs, read once from the ORIGINAL header."""

    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str
    rows: int
    columns: int
    frames: int
    transfer_syntax: str


class ReadOutcome(NamedTuple):
    """Either a validated dataset with its summary, or a rejection."""

    dataset: Dataset | None
    summary: InstanceSummary | None
    rejection: Rejection | None

    @property
    def ok(self) -> bool:
        return self.rejection is None


class _Rejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(reason, message)


def read_instance(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ReadOutcome:
    """Reads and validates one file; decodes its pixels so a file accepted here can be displayed."""
    try:
        ds, summary = _read_and_validate(Path(path), max_bytes)
    except _Rejected as exc:
        logger.info("Rejected a file: %s", exc.rejection.reason)
        return ReadOutcome(None, None, exc.rejection)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"; the type is reported
        logger.warning("Rejected a file after an unexpected %s", type(exc).__name__)
        return ReadOutcome(None, None, Rejection(NOT_DICOM, f"The file could not be parsed ({type(exc).__name__})."))
    return ReadOutcome(ds, summary, None)


def _read_and_validate(path: Path, max_bytes: int) -> tuple[Dataset, InstanceSummary]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _Rejected(NOT_DICOM, f"The file could not be opened ({type(exc).__name__}).") from exc
    if size > max_bytes:
        raise _Rejected(TOO_LARGE, f"The file has {size} bytes; the limit is {max_bytes}.")
    ds = _parse(path, size)
    summary = _summarise(ds)
    _check_pixels(ds, summary)
    return ds, summary


def _parse(path: Path, size: int) -> Dataset:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            ds = _parse_without_preamble(path)
        except (EOFError, OSError) as exc:
            raise _Rejected(TRUNCATED, "The file ends inside its header.") from exc
        except Exception as exc:
            raise _Rejected(NOT_DICOM, f"The file is not a readable DICOM file ({type(exc).__name__}).") from exc
    if any("End of file reached" in str(w.message) for w in caught):
        raise _Rejected(TRUNCATED, "The file ends before the end of its pixel data.")
    if not ds._dict:
        raise _Rejected(TRUNCATED, "The file ends right after its file meta information.")
    _check_complete(ds, size)
    return ds


def _parse_without_preamble(path: Path) -> Dataset:
    """Some archives export bare datasets without the 128-byte preamble; accept them only if they look right."""
    with path.open("rb") as fp:
        head = fp.read(8)
    if len(head) < 8 or head[:2] != b"\x08\x00":
        raise _Rejected(NOT_DICOM, "The file has no DICOM preamble and does not start with a DICOM element.")
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise _Rejected(NOT_DICOM, "The file has no DICOM preamble and could not be parsed.") from exc
    if "SOPClassUID" not in ds:
        raise _Rejected(NOT_DICOM, "The file has no DICOM preamble and no SOP Class UID.")
    implicit_vr, little_endian = ds.original_encoding
    if "TransferSyntaxUID" not in ds.file_meta and little_endian:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit_vr else ExplicitVRLittleEndian
    logger.warning("Accepted a DICOM file without preamble or file meta information")
    return ds


def _check_complete(ds: Dataset, size: int) -> None:
    """The last top-level element must end exactly where the file does; pydicom silently reads short values."""
    last = ds._dict[max(ds._dict)]
    length = getattr(last, "length", None)
    offset = getattr(last, "value_tell", None)
    if length is None or offset is None or length == _UNDEFINED_LENGTH:
        return
    value = last.value
    if value is not None and len(value) < length:
        raise _Rejected(TRUNCATED, f"The file ends {length - len(value)} bytes before the end of its last element.")
    if 0 < size - (offset + length) < _ELEMENT_HEADER_BYTES:
        raise _Rejected(TRUNCATED, "The file ends inside an element header.")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return str(value).strip() if value is not None else ""


def _integer(ds: Dataset, keyword: str, default: int) -> int:
    value = ds.get(keyword, None)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise _Rejected(ABSURD_DIMENSIONS, f"{keyword} is not an integer.") from exc


def _summarise(ds: Dataset) -> InstanceSummary:
    uids = {}
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        value = _text(ds, keyword).rstrip("\x00")
        if not value:
            raise _Rejected(MISSING_UID, f"{keyword} is missing or empty.")
        if not UID(value).is_valid:
            raise _Rejected(MISSING_UID, f"{keyword} is not a valid UID.")
        uids[keyword] = value
    modality = _text(ds, "Modality").upper()
    if modality != MR_MODALITY:
        raise _Rejected(NOT_MR, f"The modality is {modality or 'missing'}; only MR images are accepted.")
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    return InstanceSummary(
        patient_id=_text(ds, "PatientID"),
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        sop_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        modality=modality,
        rows=_integer(ds, "Rows", 0),
        columns=_integer(ds, "Columns", 0),
        frames=_integer(ds, "NumberOfFrames", 1),
        transfer_syntax=transfer_syntax,
    )


def _check_pixels(ds: Dataset, summary: InstanceSummary) -> None:
    if _PIXEL_DATA not in ds._dict or ds._dict[_PIXEL_DATA].value in (None, b""):
        raise _Rejected(NO_PIXEL_DATA, "The file has no pixel data.")
    _check_dimensions(ds, summary)
    if not summary.transfer_syntax:
        raise _Rejected(UNDECODABLE_PIXELS, "The file names no transfer syntax, so its pixels cannot be decoded.")
    _decode(ds, summary.transfer_syntax)


def _check_dimensions(ds: Dataset, summary: InstanceSummary) -> None:
    problems = []
    for name, value in (("Rows", summary.rows), ("Columns", summary.columns)):
        if not MIN_MATRIX <= value <= MAX_MATRIX:
            problems.append(f"{name} = {value} (allowed {MIN_MATRIX}..{MAX_MATRIX})")
    if not 1 <= summary.frames <= MAX_FRAMES:
        problems.append(f"Number of Frames = {summary.frames} (allowed 1..{MAX_FRAMES})")
    bits_allocated = _integer(ds, "BitsAllocated", 0)
    if bits_allocated not in BITS_ALLOCATED:
        problems.append(f"Bits Allocated = {bits_allocated} (allowed {BITS_ALLOCATED})")
    bits_stored = _integer(ds, "BitsStored", bits_allocated)
    if not 1 <= bits_stored <= bits_allocated:
        problems.append(f"Bits Stored = {bits_stored} with Bits Allocated = {bits_allocated}")
    samples = _integer(ds, "SamplesPerPixel", 1)
    if samples not in SAMPLES_PER_PIXEL:
        problems.append(f"Samples per Pixel = {samples} (allowed {SAMPLES_PER_PIXEL})")
    if problems:
        raise _Rejected(ABSURD_DIMENSIONS, "Implausible image geometry: " + "; ".join(problems) + ".")


def _decode(ds: Dataset, transfer_syntax: str) -> None:
    """Tries every available pixel-data plugin; the rejection lists each plugin's reason."""
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as exc:
        raise _Rejected(UNDECODABLE_PIXELS, f"No pixel decoder exists for transfer syntax {transfer_syntax}.") from exc
    if not decoder.is_encapsulated:
        _check_native_length(ds)
        try:
            decoder.as_array(ds)
        except Exception as exc:  # noqa: BLE001 - reported as the file's reason
            raise _Rejected(UNDECODABLE_PIXELS, f"Native pixel data: {_first_line(exc)}") from exc
        return
    plugins = decoder.available_plugins
    if not plugins:
        missing = "; ".join(decoder.missing_dependencies) or "none installed"
        raise _Rejected(UNDECODABLE_PIXELS, f"No decoder available for {transfer_syntax}: {missing}.")
    reasons = []
    for plugin in plugins:
        try:
            decoder.as_array(ds, decoding_plugin=plugin)
        except Exception as exc:  # noqa: BLE001 - each plugin's failure is collected and reported
            reasons.append(f"{plugin}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        return
    raise _Rejected(UNDECODABLE_PIXELS, f"Every decoder failed for {transfer_syntax}: " + " | ".join(reasons))


def _check_native_length(ds: Dataset) -> None:
    rows, columns = _integer(ds, "Rows", 0), _integer(ds, "Columns", 0)
    expected = (
        rows
        * columns
        * _integer(ds, "NumberOfFrames", 1)
        * _integer(ds, "SamplesPerPixel", 1)
        * _integer(ds, "BitsAllocated", 16)
        // 8
    )
    actual = len(ds._dict[_PIXEL_DATA].value)
    if actual < expected:
        raise _Rejected(TRUNCATED, f"The pixel data has {actual} bytes; the header announces {expected}.")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


K = TypeVar("K", bound=Hashable)


class _SeriesView(NamedTuple):
    patient_id: str
    series_uid: str
    sop_uid: str
    rows: int
    columns: int


def _series_view(item: Dataset | InstanceSummary) -> _SeriesView:
    if isinstance(item, InstanceSummary):
        return _SeriesView(item.patient_id, item.series_uid, item.sop_uid, item.rows, item.columns)
    return _SeriesView(
        _text(item, "PatientID"),
        _text(item, "SeriesInstanceUID"),
        _text(item, "SOPInstanceUID"),
        int(item.get("Rows", 0) or 0),
        int(item.get("Columns", 0) or 0),
    )


@overload
def check_series(instances: Mapping[K, Dataset | InstanceSummary]) -> dict[K, Rejection]: ...
@overload
def check_series(instances: Sequence[Dataset | InstanceSummary]) -> dict[str, Rejection]: ...


def check_series(instances):
    """Problems only visible across the files of one upload, found on ORIGINAL headers.

    Given a mapping (e.g. path -> dataset), rejections are keyed like it and of duplicates the first is kept.
    Given a sequence, rejections are keyed by SOP Instance UID; copies cannot be told apart then, so a
    duplicated UID is refused as a whole. A series holding several patients is refused whole: nobody can tell
    which files belong. Files whose matrix differs from the series' most common one are refused.
    """
    if isinstance(instances, Mapping):
        return _check(instances)
    views = {index: _series_view(item) for index, item in enumerate(instances)}
    found = _check(views)
    counts = Counter(view.sop_uid for view in views.values())
    by_uid: dict[str, Rejection] = {}
    for index, rejection in found.items():
        uid = views[index].sop_uid
        if counts[uid] > 1:
            rejection = Rejection(
                DUPLICATE_IN_UPLOAD, f"{counts[uid]} files of this upload share one SOP Instance UID; all are refused."
            )
        by_uid.setdefault(uid, rejection)
    return by_uid


def _check(instances: Mapping[K, Dataset | InstanceSummary | _SeriesView]) -> dict[K, Rejection]:
    views = {key: item if isinstance(item, _SeriesView) else _series_view(item) for key, item in instances.items()}
    rejections: dict[K, Rejection] = {}
    seen: set[str] = set()
    by_series: dict[str, list[K]] = defaultdict(list)
    for key, view in views.items():
        if view.sop_uid in seen:
            rejections[key] = Rejection(
                DUPLICATE_IN_UPLOAD, "Another file of this upload has the same SOP Instance UID; the first is kept."
            )
            continue
        seen.add(view.sop_uid)
        by_series[view.series_uid].append(key)

    for keys in by_series.values():
        patients = {views[key].patient_id for key in keys}
        if len(patients) > 1:
            message = f"This series holds images of {len(patients)} different patients; the series is refused."
            rejections.update((key, Rejection(MIXED_PATIENTS, message)) for key in keys)
            continue
        geometries = Counter((views[key].rows, views[key].columns) for key in keys)
        if len(geometries) > 1:
            (rows, columns), count = geometries.most_common(1)[0]
            for key in keys:
                view = views[key]
                if (view.rows, view.columns) != (rows, columns):
                    rejections[key] = Rejection(
                        INCONSISTENT_GEOMETRY,
                        f"This image is {view.rows}x{view.columns} while {count} of {len(keys)} images "
                        f"of its series are {rows}x{columns}.",
                    )
    return rejections
