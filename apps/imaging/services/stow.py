"""DICOMweb STOW-RS (PS3.18 section 10.5): a multipart/related body of application/dicom parts, streamed to
disk as one staged upload (channel "stow-rs") and ingested like any other.

The body is never held in memory: it is read in chunks, each part written to the batch's staging folder
under a neutral name, and the whole body is capped by `STOW_MAX_BYTES`. Small requests are processed before
answering, so the response lists each instance's outcome; larger ones are queued and answered 202 with the
upload's URL. Accepted instances are referenced by their de-identified UIDs only. The UIDs of failed
instances are echoed back to the caller that sent them (as PS3.18 asks) but are neither stored nor logged.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import pydicom
from django.conf import settings
from django.utils.http import parse_header_parameters
from pydicom.dataset import Dataset
from pydicom.uid import RE_VALID_UID

from apps.imaging import deidentify, validation
from apps.imaging.models import FileOutcome, UploadBatch, UploadFileResult
from apps.imaging.services import ingest, uploads
from apps.institutions.models import Institution
from apps.jobs import lifecycle

logger = logging.getLogger(__name__)

MULTIPART_RELATED = "multipart/related"
DICOM_MEDIA_TYPE = "application/dicom"
DICOM_JSON_MEDIA_TYPE = "application/dicom+json"

CHUNK_BYTES = 1024 * 1024
MAX_LINE_BYTES = 8 * 1024
MAX_PART_HEADERS = 64

EMPTY_PART = "empty_part"
UNSUPPORTED_PART = "unsupported_part"
STUDY_MISMATCH = "study_mismatch"

# PS3.18 Table 10.5.3-3 failure reasons; everything not named here is "cannot understand".
OUT_OF_RESOURCES = 0xA700
DATA_SET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
FAILURE_REASONS = {
    validation.TOO_LARGE: OUT_OF_RESOURCES,
    STUDY_MISMATCH: DATA_SET_MISMATCH,
    validation.NOT_MR: SOP_CLASS_NOT_SUPPORTED,
    "store_failed": PROCESSING_FAILURE,
}


class StowError(Exception):
    """The request as a whole is refused; `status` is the HTTP status PS3.18 gives that case."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Part:
    """One body part as staged: its neutral name, size, and the reason it was refused on arrival, if any."""

    name: str
    size: int = 0
    refused: str = ""
    message: str = ""


class Identity(NamedTuple):
    """The original UIDs of a part, held in memory for the response only."""

    sop_class: str = ""
    sop_instance: str = ""
    study: str = ""


@dataclass
class StowOutcome:
    status: int
    body: dict
    batch: UploadBatch
    queued: bool = False
    parts: list[Part] = field(default_factory=list)


def boundary_of(content_type: str) -> str:
    """The boundary of a STOW-RS Content-Type; 415 for another media type, 400 without a usable boundary."""
    media_type, params = parse_header_parameters(content_type or "")
    if media_type.lower() != MULTIPART_RELATED:
        raise StowError(415, f'STOW-RS takes {MULTIPART_RELATED}; type="{DICOM_MEDIA_TYPE}".')
    part_type = params.get("type", DICOM_MEDIA_TYPE).lower()
    if part_type != DICOM_MEDIA_TYPE:
        raise StowError(415, f'Only type="{DICOM_MEDIA_TYPE}" parts are accepted (no metadata/bulk data form).')
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise StowError(400, "The Content-Type has no (valid) boundary parameter.")
    return boundary


class _Body:
    """The request body, read in chunks and never more than `limit` bytes in all."""

    def __init__(self, stream: BinaryIO | None, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.read_bytes = 0
        self.buffer = bytearray()

    def fill(self) -> bool:
        chunk = self.stream.read(CHUNK_BYTES) if self.stream is not None else b""
        if not chunk:
            return False
        self.read_bytes += len(chunk)
        if self.read_bytes > self.limit:
            raise StowError(413, f"The request body is larger than {self.limit} bytes.")
        self.buffer += chunk
        return True

    def need(self, count: int) -> None:
        while len(self.buffer) < count:
            if not self.fill():
                raise StowError(400, "The body ends before its closing boundary (truncated).")

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_LINE_BYTES:
                raise StowError(400, "A part header line is too long.")
            if not self.fill():
                raise StowError(400, "The body ends inside a part header (truncated).")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def copy_until(self, delimiter: bytes, out: BinaryIO | None, max_bytes: int) -> int:
        """Copies up to the delimiter (consumed, not copied); returns the byte count, writing at most max_bytes."""
        size = 0
        keep = len(delimiter) - 1
        while True:
            end = self.buffer.find(delimiter)
            if end >= 0:
                size += self._emit(end, out, size, max_bytes)
                del self.buffer[: len(delimiter)]
                return size
            if len(self.buffer) > keep:
                size += self._emit(len(self.buffer) - keep, out, size, max_bytes)
            if not self.fill():
                raise StowError(400, "The body ends before its closing boundary (truncated).")

    def _emit(self, count: int, out: BinaryIO | None, written: int, max_bytes: int) -> int:
        if out is not None and written + count <= max_bytes:
            out.write(self.buffer[:count])
        del self.buffer[:count]
        return count


def _part_headers(body: _Body) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_PART_HEADERS):
        line = body.line()
        if not line:
            return headers
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise StowError(400, "A part header is not of the form 'Name: value'.")
        headers[name.strip().lower()] = value.strip()
    raise StowError(400, "A part has too many headers.")


def receive_parts(stream: BinaryIO | None, boundary: str, folder: Path, *, max_body: int, max_part: int) -> list[Part]:
    """Streams each part of a multipart/related body into `folder` (RFC 2046); refuses a malformed body."""
    body = _Body(stream, max_body)
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    body.buffer += b"\r\n"  # so that a delimiter at the very start is found like every later one
    body.copy_until(delimiter, None, 0)
    parts: list[Part] = []
    while True:
        body.need(2)
        if body.buffer[:2] == b"--":
            break
        if body.line().strip(b" \t"):
            raise StowError(400, "A boundary delimiter is followed by unexpected bytes.")
        headers = _part_headers(body)
        part = Part(name=f"part{len(parts) + 1:05d}.dcm")
        part_type = parse_header_parameters(headers.get("content-type", DICOM_MEDIA_TYPE))[0].lower()
        target = folder / part.name
        if part_type != DICOM_MEDIA_TYPE:
            part.size = body.copy_until(delimiter, None, 0)
            part.refused, part.message = UNSUPPORTED_PART, "The part is not application/dicom."
        else:
            with target.open("wb") as out:
                part.size = body.copy_until(delimiter, out, max_part)
            if part.size == 0:
                part.refused, part.message = EMPTY_PART, "The part is empty."
            elif part.size > max_part:
                part.refused, part.message = validation.TOO_LARGE, f"The part is larger than {max_part} bytes."
            if part.refused:
                target.unlink()
        parts.append(part)
    if not parts:
        raise StowError(400, "The body has no parts.")
    return parts


def identify(path: Path) -> Identity:
    """The original SOP class, SOP instance and study UIDs of a staged part; empty where unreadable."""
    try:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, force=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"],
        )
        return Identity(*(str(ds.get(k, "") or "") for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")))
    except Exception:  # noqa: BLE001 - an unreadable part gets its reason from ingestion
        return Identity()


def store_instances(
    institution: Institution,
    user,
    stream: BinaryIO | None,
    content_type: str,
    content_length: int | None,
    study_uid: str | None = None,
) -> StowOutcome:
    """Stages a STOW-RS body as one batch and processes it (or queues it when large); see the module doc."""
    boundary = boundary_of(content_type)
    if study_uid is not None and not is_uid(study_uid):
        raise StowError(400, "The study in the URL is not a valid UID.")
    if content_length and content_length > settings.STOW_MAX_BYTES:
        raise StowError(413, f"The request body is larger than {settings.STOW_MAX_BYTES} bytes.")
    batch = uploads.open_batch(institution, user, channel="stow-rs")
    folder = uploads.staging_dir(batch) / "files"
    try:
        parts = receive_parts(
            stream, boundary, folder, max_body=settings.STOW_MAX_BYTES, max_part=settings.INGEST_MAX_FILE_BYTES
        )
    except StowError as exc:
        logger.info("STOW-RS upload %s refused (%s)", batch.pk, exc.status)
        uploads.refuse_batch(batch, f"STOW-RS request refused: {exc}")
        raise
    except Exception as exc:
        logger.warning("STOW-RS upload %s: body could not be read (%s)", batch.pk, type(exc).__name__)
        uploads.refuse_batch(batch, "The request body could not be read.")
        raise StowError(400, "The request body could not be read.") from exc
    identities = {part.name: identify(folder / part.name) for part in parts if not part.refused}
    if study_uid is not None:
        for part in parts:
            other_study = identities.get(part.name, Identity()).study
            if other_study and other_study != study_uid:
                (folder / part.name).unlink()
                part.refused, part.message = STUDY_MISMATCH, "The instance belongs to another study than the URL's."
    UploadFileResult.objects.bulk_create(
        UploadFileResult(batch=batch, name=p.name, outcome=FileOutcome.REJECTED, reason=p.refused, message=p.message)
        for p in parts if p.refused
    )
    batch = uploads.close_batch(batch)
    staged_bytes = sum(p.size for p in parts if not p.refused)
    if staged_bytes > settings.STOW_SYNC_MAX_BYTES:
        uploads.enqueue_processing(batch)
        logger.info("STOW-RS upload %s queued (%s parts)", batch.pk, len(parts))
        return StowOutcome(202, {}, batch, queued=True, parts=parts)
    try:
        batch = ingest.process_batch(batch.pk)
    except Exception as exc:
        logger.error("STOW-RS upload %s failed while processing (%s)", batch.pk, type(exc).__name__)
        lifecycle.fail(UploadBatch, batch.pk, ingest.public_error(exc))
        raise
    status, body = store_response(batch, parts, identities)
    return StowOutcome(status, body, batch, parts=parts)


def is_uid(value: str) -> bool:
    """Checked by pattern, not by pydicom's UID type, whose warning would log the value."""
    return len(value) <= 64 and RE_VALID_UID.match(value) is not None


def _uid_or_none(value: str) -> str | None:
    return value if is_uid(value) else None


def store_response(batch: UploadBatch, parts: list[Part], identities: dict[str, Identity]) -> tuple[int, dict]:
    """The PS3.18 Store Instances Response: 200 all stored, 202 some failed, 409 none stored."""
    results = {r.name: r for r in batch.results.select_related("instance")}
    referenced: list[Dataset] = []
    failed: list[Dataset] = []
    for part in parts:
        identity = identities.get(part.name, Identity())
        result = results.get(part.name)
        item = Dataset()
        if result is not None and result.outcome in (FileOutcome.ACCEPTED, FileOutcome.DUPLICATE):
            item.ReferencedSOPClassUID = identity.sop_class
            item.ReferencedSOPInstanceUID = (
                result.instance.sop_uid if result.instance is not None
                else deidentify.remap_uid(identity.sop_instance, settings.DEID_SECRET)
            )
            referenced.append(item)
            continue
        if sop_class := _uid_or_none(identity.sop_class):
            item.ReferencedSOPClassUID = sop_class
        if sop_instance := _uid_or_none(identity.sop_instance):
            item.ReferencedSOPInstanceUID = sop_instance
        item.FailureReason = FAILURE_REASONS.get(result.reason if result else "", CANNOT_UNDERSTAND)
        failed.append(item)
    response = Dataset()
    if referenced:
        response.ReferencedSOPSequence = referenced
    if failed:
        response.FailedSOPSequence = failed
    status = 200 if not failed else 202 if referenced else 409
    return status, response.to_json_dict()
