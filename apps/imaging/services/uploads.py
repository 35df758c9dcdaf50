"""Staging an upload on disk and handing it to the worker.

An upload is first copied (or unpacked) into its own staging folder, outside the image store, and only then
processed; the staging folder is removed once every file has an outcome, so no identifiable file outlives its
batch.

Every uploaded file or archive gets an outcome of its own: an archive refused on arrival (a zip bomb, a path
that climbs out) is one rejected item of its batch and the other files go on. A batch whose every item was
refused on arrival is recorded, finished at once and reported with `UploadRefused`, so nobody is offered to
process it again.
"""

import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from apps.imaging.archives import ArchiveRejected, extract_archive
from apps.imaging.models import BatchOutcome, FileOutcome, UploadBatch, UploadFileResult
from apps.institutions.models import Institution
from apps.jobs import lifecycle
from apps.jobs.models import JobStatus

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip",)


class UploadRefused(Exception):
    """Nothing of the upload can be processed (every item refused on arrival, or no file at all); the batch is
    kept and records why."""

    def __init__(self, batch: UploadBatch, message: str) -> None:
        super().__init__(message)
        self.batch = batch


def staging_dir(batch: UploadBatch) -> Path:
    return Path(settings.UPLOAD_STAGING_DIR) / str(batch.pk)


def staged_files(batch: UploadBatch) -> list[Path]:
    """The files of a staged batch, in a stable order."""
    root = staging_dir(batch) / "files"
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def staged_name(batch: UploadBatch, path: Path) -> str:
    """The name a file is known by in the batch: its path inside the upload."""
    return path.relative_to(staging_dir(batch) / "files").as_posix()


# File and folder names from hospitals often carry the patient's name, ID or a UID. Only names that look like a
# plain image number (IM0001.dcm, 00000012, I10, 01) are kept; anything else is stored under a neutral name.
PLAIN_NAME = re.compile(r"[A-Za-z]{0,4}[0-9][0-9_-]{0,11}(\.(dcm|dicom|ima|zip))?", re.IGNORECASE)


class NeutralNames:
    """Maps client-supplied paths to harmless ones for one upload: no traversal, no absolute path, and no
    identifying words; the same folder always gets the same neutral name, so a study keeps its structure."""

    def __init__(self) -> None:
        self.folders: dict[tuple[str, ...], str] = {}

    def __call__(self, name: str, index: int) -> Path:
        parts = [p for p in Path(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")][-4:]
        if not parts:
            return Path(f"file-{index:06d}")
        *folders, filename = parts
        kept = []
        for depth, part in enumerate(folders):
            key = tuple(folders[: depth + 1])
            if not PLAIN_NAME.fullmatch(part):
                part = self.folders.setdefault(key, f"folder-{len(self.folders) + 1:04d}")
            kept.append(part)
        suffix = ".zip" if filename.lower().endswith(".zip") else ""
        kept.append(filename if PLAIN_NAME.fullmatch(filename) else f"file-{index:06d}{suffix}")
        return Path(*kept)


def _new_batch(institution: Institution, user, channel: str, vendor_output: bool = False) -> UploadBatch:
    batch = UploadBatch.objects.create(institution=institution, uploaded_by=user, channel=channel,
                                       vendor_output=vendor_output)
    (staging_dir(batch) / "files").mkdir(parents=True, exist_ok=False)
    return batch


def _refuse(batch: UploadBatch, message: str) -> UploadRefused:
    shutil.rmtree(staging_dir(batch), ignore_errors=True)
    lifecycle.fail(UploadBatch, batch.pk, message)
    batch.refresh_from_db()
    return UploadRefused(batch, message)


def _reject_item(batch: UploadBatch, name: str, reason: str, message: str) -> str:
    """Records the outcome of an item refused on arrival, under a name no other file of the batch has."""
    taken = set(batch.results.values_list("name", flat=True))
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        stem, dot, suffix = name.rpartition(".")
        candidate = f"{stem}_{number}.{suffix}" if dot else f"{name}_{number}"
    UploadFileResult.objects.create(
        batch=batch, name=candidate, outcome=FileOutcome.REJECTED, reason=reason[:40], message=message[:500]
    )
    return candidate


def _unpack(batch: UploadBatch, archive: Path, into: Path, name: str) -> str:
    """Unpacks one archive of the batch into `into`; a refused or empty archive becomes one rejected item.

    Returns the name the archive is known by in the batch: the folder of its members, or its rejected item.
    """
    try:
        members = extract_archive(
            archive,
            into,
            max_total_bytes=settings.INGEST_MAX_ARCHIVE_UNPACKED_BYTES,
            max_ratio=settings.INGEST_MAX_ARCHIVE_RATIO,
            max_members=settings.INGEST_MAX_ARCHIVE_MEMBERS,
        )
    except ArchiveRejected as exc:
        shutil.rmtree(into, ignore_errors=True)
        return _reject_item(batch, name, f"archive_{exc.reason}", f"Archive refused ({exc.reason}): {exc.message}")
    if not members:
        shutil.rmtree(into, ignore_errors=True)
        return _reject_item(
            batch, name, "archive_empty", "The archive holds no files (folders and system files are skipped)."
        )
    return into.relative_to(staging_dir(batch) / "files").as_posix() + "/"


def stage_files(
    institution: Institution, user, files: Iterable[tuple[str, BinaryIO]], channel: str = "web",
    vendor_output: bool = False,
) -> UploadBatch:
    """Stages uploaded files (zip archives are unpacked safely) as one batch; does not process them.
    ``vendor_output``: the coordinator said the files are a vendor's DL output (``UploadBatch.vendor_output``)."""
    batch = _new_batch(institution, user, channel, vendor_output)
    root = staging_dir(batch) / "files"
    neutral = NeutralNames()
    for index, (name, stream) in enumerate(files):
        relative = neutral(name, index)
        if relative.suffix.lower() in ARCHIVE_SUFFIXES:
            archive = staging_dir(batch) / f"archive{index}.zip"
            with archive.open("wb") as out:
                shutil.copyfileobj(stream, out, 1024 * 1024)
            batch.items.append(_unpack(batch, archive, root / f"archive{index}", relative.as_posix()))
            archive.unlink()
            continue
        target = root / relative
        while target.exists():
            target = target.with_name(f"{target.stem}_{index}{target.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        batch.items.append(staged_name(batch, target))
    return _finish_staging(batch)


def stage_path(institution: Institution, user, path: Path, channel: str = "command") -> UploadBatch:
    """Stages a folder (recursively) or a zip archive from the server's file system."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.is_file():
        with path.open("rb") as stream:
            return stage_files(institution, user, [(path.name, stream)], channel)
    batch = _new_batch(institution, user, channel)
    root = staging_dir(batch) / "files"
    neutral = NeutralNames()
    for index, source in enumerate(sorted(path.rglob("*"))):
        if source.is_symlink() or not source.is_file():
            continue
        target = root / neutral(source.relative_to(path).as_posix(), index)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix.lower() in ARCHIVE_SUFFIXES:
            _unpack(batch, source, target.with_suffix(""), staged_name(batch, target))
        else:
            shutil.copyfile(source, target)
    return _finish_staging(batch)


def _finish_staging(batch: UploadBatch) -> UploadBatch:
    """Counts the staged files and the items refused on arrival; a batch with nothing left to process is finished
    here, kept on record, and reported with `UploadRefused`."""
    staged = len(staged_files(batch))
    batch.file_count = staged + batch.results.count()
    if batch.file_count == 0:
        raise _refuse(batch, "The upload contains no files.")
    batch.save(update_fields=["file_count", "items"])
    if staged == 0:
        from apps.imaging.services.ingest import finish_batch

        batch = finish_batch(batch)
        raise UploadRefused(batch, describe(batch))
    return batch


def open_batch(institution: Institution, user, channel: str) -> UploadBatch:
    """An empty batch that a network channel (C-STORE, STOW-RS) fills file by file under `staging_dir/files`."""
    return _new_batch(institution, user, channel)


def close_batch(batch: UploadBatch) -> UploadBatch:
    """Ends the staging of a batch filled file by file; files refused on arrival already have an outcome."""
    batch.file_count = len(staged_files(batch)) + batch.results.count()
    if batch.file_count == 0:
        raise _refuse(batch, "The upload contains no files.")
    batch.save(update_fields=["file_count"])
    return batch


def refuse_batch(batch: UploadBatch, message: str) -> UploadRefused:
    """Fails a batch whose transfer could not be completed and removes what was staged of it."""
    return _refuse(batch, message)


def enqueue_processing(batch: UploadBatch) -> None:
    """Queues the worker once the batch row is committed."""
    lifecycle.queue(batch)


class NothingToRetry(lifecycle.NotRetryable):
    """The batch is done, still being processed, or has no staged file left: processing it again could only fail."""


def can_retry(batch: UploadBatch) -> bool:
    """A failed batch, or one whose worker stopped, whose staged files are still there can be processed again."""
    return lifecycle.can_retry(batch) and bool(staged_files(batch))


def retry_upload(batch: UploadBatch) -> None:
    """Queues a batch again; files that already have an outcome are skipped, so this is always safe."""
    if not can_retry(batch):
        if batch.status == JobStatus.DONE:
            reason = "Nothing to process again: every file of this upload has its outcome."
        elif lifecycle.can_retry(batch):
            reason = "Nothing to process again: no file of this upload is left on the server; upload the files again."
        else:
            reason = "The upload is waiting for the worker or being processed; it can be retried if that fails."
        raise NothingToRetry(reason)
    lifecycle.prepare_retry(batch)
    enqueue_processing(batch)


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def describe(batch: UploadBatch) -> str:
    """What happened to an upload, in one or two sentences, for the upload page and the API."""
    if batch.status == JobStatus.QUEUED:
        note = f" ({batch.error})" if batch.error else ""
        return f"Waiting for the worker: {_files(batch.file_count)} received.{note}"
    if batch.status == JobStatus.RUNNING:
        return f"Processing: {batch.processed_count} of {_files(batch.file_count)} done."
    if batch.status == JobStatus.FAILED:
        return f"Failed: {batch.error}" if batch.error else "Failed."
    if batch.outcome == BatchOutcome.REJECTED:
        every = "the file was" if batch.rejected_count == 1 else f"all {batch.rejected_count} files were"
        return f"Nothing was stored: {every} rejected. The reasons are listed per file."
    parts = [f"{batch.accepted_count} stored"]
    if batch.duplicate_count:
        parts.append(f"{batch.duplicate_count} already stored before")
    if batch.rejected_count:
        parts.append(f"{batch.rejected_count} rejected (the reasons are listed per file)")
    text = f"{_files(batch.file_count)}: {', '.join(parts)}."
    if batch.held_count:
        text += (
            f" {batch.held_count} of the stored files {'belongs' if batch.held_count == 1 else 'belong'} to series"
            " held from readers (the reason is listed"
            " per file): check those series on the Cases page, then release or reject them."
        )
    return text
