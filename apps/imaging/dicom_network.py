"""The DICOM C-STORE entry point: a pynetdicom Storage SCP in front of the ordinary staging and ingestion.

Each association from a registered node (its calling AE title names the site) fills ONE staged UploadBatch
(channel "c-store"); when the association ends, released or aborted, the batch is closed and queued for
`process_batch` like any other upload. The storage handler never raises: every step (batch, size, decode,
write) has its own failure status, a reason code recorded as the file's outcome, and a log line that names no
header value. A success status means "received and staged"; the batch's per-file results say what was stored.
"""

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections
from pydicom.dataset import Dataset
from pydicom.uid import EnhancedMRImageStorage, MRImageStorage
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    StoragePresentationContexts,
    VerificationPresentationContexts,
    evt,
)
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.transport import ThreadedAssociationServer

from apps.imaging import validation
from apps.imaging.models import DicomNode, FileOutcome, UploadBatch, UploadFileResult, validate_ae_title
from apps.imaging.services import uploads
from apps.institutions.models import Institution

logger = logging.getLogger(__name__)

DEFAULT_AE_TITLE = "READERSTUDY"

SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
TOO_LARGE_STATUS = 0xA701
SOP_CLASS_MISMATCH_STATUS = 0xA900
CANNOT_UNDERSTAND = 0xC210
UNEXPECTED_FAILURE = 0xC211

WRITE_FAILED = "write_failed"
SOP_CLASS_MISMATCH = "sop_class_mismatch"
STAGING_FAILED = "staging_failed"

# A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE title not recognised.
_REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)


class StoreRefused(Exception):
    """One step of the storage handler failed; carries the DIMSE status and the reason code to record."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass
class _Session:
    institution: Institution
    batch: UploadBatch | None = None
    received: int = 0


def register_node(ae_title: str, institution: Institution, allowed_host: str | None = None) -> DicomNode:
    """Registers (or updates) the node allowed to send with this calling AE title, for this site."""
    ae_title = ae_title.strip()
    try:
        validate_ae_title(ae_title)
    except ValidationError as exc:
        raise ValueError(exc.messages[0]) from exc
    node, _ = DicomNode.objects.update_or_create(
        ae_title=ae_title, defaults={"institution": institution, "allowed_host": allowed_host or None}
    )
    return node


def find_node(ae_title: str, address: str) -> DicomNode | None:
    """The registered node for a calling AE title, if it may connect from this address."""
    node = DicomNode.objects.select_related("institution").filter(ae_title=ae_title.strip()).first()
    if node is None or (node.allowed_host and node.allowed_host != address):
        return None
    return node


def _reject(assoc: Association, result_source_diagnostic: tuple[int, int, int]) -> None:
    """Sends A-ASSOCIATE-RJ and waits for it to leave, as pynetdicom's own rejection does."""
    try:
        assoc.acse.send_reject(*result_source_diagnostic)
        assoc.kill()
    finally:
        connections.close_all()


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]
    return status


class StorageSCP:
    """One application entity; per association, the registered site and the batch being filled."""

    def __init__(self, ae_title: str = DEFAULT_AE_TITLE) -> None:
        self.ae_title = ae_title
        self._sessions: dict[Association, _Session] = {}
        self._lock = threading.Lock()

    def application_entity(self) -> AE:
        """MR (and Enhanced MR) with every transfer syntax pynetdicom knows, other storage classes uncompressed."""
        ae = AE(ae_title=self.ae_title)
        for context in StoragePresentationContexts:
            if context.abstract_syntax in (MRImageStorage, EnhancedMRImageStorage):
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
            else:
                ae.add_supported_context(context.abstract_syntax)
        for context in VerificationPresentationContexts:
            ae.add_supported_context(context.abstract_syntax)
        return ae

    def handlers(self) -> list[tuple]:
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_RELEASED, self.on_end),
            (evt.EVT_ABORTED, self.on_end),
            (evt.EVT_CONN_CLOSE, self.on_end),
        ]

    def start(self, host: str, port: int, *, block: bool = False) -> ThreadedAssociationServer | None:
        """Listens on (host, port); with block=False returns the server, to be stopped with `shutdown()`."""
        return self.application_entity().start_server((host, port), block=block, evt_handlers=self.handlers())

    def on_requested(self, event: Event) -> None:
        """Rejects the association unless its calling AE title (and address, when pinned) is registered."""
        calling = str(event.assoc.requestor.primitive.calling_ae_title).strip()
        address = str(event.assoc.requestor.address)
        try:
            node = find_node(calling, address)
        except Exception as exc:  # noqa: BLE001 - a handler must not raise; reject transiently instead
            logger.error("Association from %s rejected: node lookup failed (%s)", address, type(exc).__name__)
            _reject(event.assoc, (0x02, 0x01, 0x01))
            return
        if node is None:
            logger.warning("Association from %s rejected: calling AE title %r is not a registered node",
                           address, calling)
            _reject(event.assoc, _REJECT_UNKNOWN_CALLER)
            return
        with self._lock:
            self._sessions[event.assoc] = _Session(institution=node.institution)
        logger.info("Association accepted from node %r (%s)", calling, address)

    def on_store(self, event: Event) -> Dataset:
        """Stages one instance; every failure becomes a status with a reason, never an exception."""
        with self._lock:
            session = self._sessions.get(event.assoc)
        if session is None:
            return _status(NOT_AUTHORIZED, "not_authorized: no registered node")
        session.received += 1
        name = f"{session.received:06d}.dcm"
        try:
            batch = self._batch(session)
        except Exception as exc:  # noqa: BLE001
            logger.error("C-STORE: could not open a batch (%s)", type(exc).__name__)
            return _status(OUT_OF_RESOURCES, f"{STAGING_FAILED}: upload batch unavailable")
        try:
            self._check_size(event)
            self._check_decodable(event)
            self._write(event, batch, name)
        except StoreRefused as refused:
            logger.info("C-STORE into upload %s refused %s: %s", batch.pk, name, refused.reason)
            _record_refusal(batch, name, refused.reason, str(refused))
            return _status(refused.status, f"{refused.reason}: {refused}")
        except Exception as exc:  # noqa: BLE001 - the contract is "never raises"; only the type is logged
            logger.error("C-STORE into upload %s failed for %s (%s)", batch.pk, name, type(exc).__name__)
            _record_refusal(batch, name, STAGING_FAILED, "The instance could not be staged.")
            return _status(UNEXPECTED_FAILURE, f"{STAGING_FAILED}: unexpected error")
        return _status(SUCCESS)

    def on_end(self, event: Event) -> None:
        """Release, abort or a dropped connection: what arrived completely is closed and queued."""
        with self._lock:
            session = self._sessions.pop(event.assoc, None)
        try:
            if session is not None and session.batch is not None:
                finish_association_batch(session.batch)
        finally:
            connections.close_all()

    def _batch(self, session: _Session) -> UploadBatch:
        if session.batch is None:
            session.batch = uploads.open_batch(session.institution, None, channel="c-store")
            logger.info("C-STORE association staging into upload %s", session.batch.pk)
        return session.batch

    @staticmethod
    def _check_size(event: Event) -> None:
        size = event.request.DataSet.getbuffer().nbytes
        limit = settings.INGEST_MAX_FILE_BYTES
        if size > limit:
            raise StoreRefused(TOO_LARGE_STATUS, validation.TOO_LARGE, f"dataset over the {limit} byte limit")

    @staticmethod
    def _check_decodable(event: Event) -> None:
        """Decodes the header and touches the identifiers inside the guard (pydicom reads lazily)."""
        try:
            ds = event.dataset
            sop_class = str(ds.SOPClassUID)
            sop_instance = str(ds.SOPInstanceUID)
        except Exception as exc:  # noqa: BLE001 - any decoding error means "cannot understand"
            raise StoreRefused(CANNOT_UNDERSTAND, validation.NOT_DICOM,
                               f"dataset cannot be decoded ({type(exc).__name__})") from exc
        if not sop_class or not sop_instance:
            raise StoreRefused(CANNOT_UNDERSTAND, validation.MISSING_UID, "dataset lacks its SOP UIDs")
        if sop_class != event.context.abstract_syntax:
            raise StoreRefused(SOP_CLASS_MISMATCH_STATUS, SOP_CLASS_MISMATCH,
                               "dataset does not match the SOP class of its context")

    @staticmethod
    def _write(event: Event, batch: UploadBatch, name: str) -> None:
        """Writes the dataset as sent (with file meta) under a neutral name; atomically, so no half file."""
        target = uploads.staging_dir(batch) / "files" / name
        partial = uploads.staging_dir(batch) / f"{name}.partial"
        try:
            partial.write_bytes(event.encoded_dataset())
            os.replace(partial, target)
        except OSError as exc:
            Path(partial).unlink(missing_ok=True)
            raise StoreRefused(OUT_OF_RESOURCES, WRITE_FAILED, f"staging write failed ({type(exc).__name__})") from exc


def _record_refusal(batch: UploadBatch, name: str, reason: str, message: str) -> None:
    try:
        UploadFileResult.objects.create(
            batch=batch, name=name, outcome=FileOutcome.REJECTED, reason=reason,
            message=f"Refused on arrival by C-STORE: {message}."[:500],
        )
    except Exception as exc:  # noqa: BLE001 - the status still tells the sender
        logger.error("Could not record the refusal of %s in upload %s (%s)", name, batch.pk, type(exc).__name__)


def finish_association_batch(batch: UploadBatch) -> None:
    """Closes the batch of an ended association and queues its processing; never raises."""
    try:
        batch = uploads.close_batch(batch)
        uploads.enqueue_processing(batch)
    except uploads.UploadRefused:
        logger.warning("Upload %s from C-STORE had no files; marked failed", batch.pk)
    except Exception as exc:  # noqa: BLE001 - the batch stays pending and can be retried from the admin
        logger.error("Upload %s from C-STORE could not be queued (%s)", batch.pk, type(exc).__name__)
    else:
        logger.info("Upload %s from C-STORE queued with %s file(s)", batch.pk, batch.file_count)
