"""Turning a staged upload into de-identified cases, series and instances.

Order per series: read and validate every file, classify the series from its original header, de-identify
in memory, then write files and rows inside one transaction. A series is stored whole or not at all; a file
that already has an outcome in this batch is skipped, so running a batch again after a crash finishes it.
"""

import hashlib
import hmac
import logging
import secrets
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pydicom
from django.conf import settings
from django.db import IntegrityError, transaction
from pydicom.dataset import Dataset

from apps.imaging import blinding, classification, deidentify, validation
from apps.imaging.deid_allow_list import NoAllowList, allowed_tags
from apps.imaging.models import (
    BatchOutcome,
    Case,
    FileOutcome,
    Instance,
    Series,
    SeriesSource,
    SeriesStatus,
    UploadBatch,
    UploadFileResult,
    Version,
)
from apps.imaging.services import enhancement, storage, vendor, windows
from apps.imaging.services.uploads import staged_files, staged_name, staging_dir
from apps.jobs import lifecycle
from apps.privacy.defacing import DefacingError
from apps.privacy.services import burned_in as burned_in_text
from apps.privacy.services import evidence, faces, policy

logger = logging.getLogger(__name__)

NO_ALLOW_LIST = "no_allow_list"


@dataclass
class ReadFile:
    name: str
    dataset: Dataset


def case_date_shift(patient_key: str) -> int:
    """A per-patient date shift in days, stable across uploads and never zero when shifting."""
    if settings.DEID_DATE_MODE != "shift":
        return 0
    span = max(1, settings.DEID_MAX_DATE_SHIFT_DAYS)
    digest = hmac.new(settings.DEID_SECRET.encode(), f"date-shift:{patient_key}".encode(), hashlib.sha256)
    return -(int.from_bytes(digest.digest()[:4], "big") % span) - 1


def new_case_code() -> str:
    """Random, so the code says nothing about the site, the patient or the upload order."""
    return f"C-{secrets.token_hex(4).upper()}"


def get_or_create_case(batch: UploadBatch, patient_id: str) -> Case:
    key = deidentify.patient_key(patient_id, batch.institution.code, settings.DEID_SECRET)
    case = Case.objects.filter(institution=batch.institution, patient_key=key).first()
    if case is not None:
        return case
    for _ in range(5):
        try:
            with transaction.atomic():
                return Case.objects.create(
                    code=new_case_code(),
                    institution=batch.institution,
                    patient_key=key,
                    date_shift_days=case_date_shift(key),
                )
        except IntegrityError:
            case = Case.objects.filter(institution=batch.institution, patient_key=key).first()
            if case is not None:
                return case
    raise RuntimeError("Could not allocate a unique case code.")


def acquisition_parameters(ds: Dataset) -> dict:
    """The acquisition parameters the enhancement model takes as context (none of them identifying)."""
    keywords = {
        "field_strength": "MagneticFieldStrength",
        "tr": "RepetitionTime",
        "te": "EchoTime",
        "ti": "InversionTime",
        "flip_angle": "FlipAngle",
        "acquisition_type": "MRAcquisitionType",
    }
    values = {}
    for key, keyword in keywords.items():
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        values[key] = str(value) if key == "acquisition_type" else float(value)
    return values


def _record(batch: UploadBatch, name: str, outcome: str, reason: str = "", message: str = "", instance=None):
    return UploadFileResult(
        batch=batch, name=name, outcome=outcome, reason=reason, message=message[:500], instance=instance
    )


HOLD_MESSAGES = {
    SeriesStatus.HELD_BURNED_IN: (
        "Stored, but its series is held from readers: the header says the pixels carry burned-in annotation, "
        "which may show patient data. Check the series on the Cases page, then release or reject it."
    ),
    SeriesStatus.HELD_VENDOR: (
        "Stored, but held: a vendor-enhanced (DL) series that matches no single conventional series of its study "
        "(the Cases page says why), never enhanced again nor read as conventional. Link it to its conventional "
        "series on the Cases page (or POST /api/imaging/series/<id>/attach-vendor/)."
    ),
}


def _accepted(batch: UploadBatch, name: str, series: Series, instance: Instance) -> UploadFileResult:
    """An accepted file; one whose series is held from readers says so, with the series status as its reason."""
    if series.status.startswith("held_"):
        message = HOLD_MESSAGES.get(
            series.status, f"Stored, but its series is held from readers ({series.get_status_display()})."
        )
        if series.status == SeriesStatus.HELD_BURNED_IN and series.hold_reason.startswith(burned_in_text.OWN_REASONS):
            message = f"Stored, but its series is held from readers: {series.hold_reason}"
        return _record(batch, name, FileOutcome.ACCEPTED, series.status, message, instance=instance)
    return _record(batch, name, FileOutcome.ACCEPTED, instance=instance)


VENDOR_BY_COORDINATOR = "Vendor-enhanced series: the coordinator said so on upload."


def store_series(batch: UploadBatch, files: list[ReadFile]) -> list[UploadFileResult]:
    """De-identifies and stores one series atomically; returns the per-file results it committed."""
    written: list[str] = []
    first = files[0].dataset
    sequence = classification.classify_sequence(first)
    # A vendor's DL output is the DL version of another series: held until a coordinator links it (never enhanced,
    # never offered as conventional). Decided on the original header, which de-identification changes, or by the
    # coordinator, who said on upload that the files are a vendor's output.
    vendor_reason = classification.vendor_enhancement(first) or (VENDOR_BY_COORDINATOR if batch.vendor_output else None)
    # Faces and ears cut from a 3D head series for a site that asks, before the text check and anything stored.
    defaced = (faces.deface_datasets([item.dataset for item in files])
               if policy.defaces_3d_heads(batch.institution) and faces.is_3d_head(first) else None)
    options = (deidentify.CLEAN_RECOGNIZABLE_VISUAL_FEATURES,) if defaced is not None else ()
    # Every image is read by OCR for burned-in text, whatever its header says, before the transaction (slow).
    text_check = burned_in_text.check_series([item.dataset for item in files])
    text_reason = burned_in_text.hold_reason(text_check)
    try:
        with transaction.atomic():
            case = get_or_create_case(batch, str(first.get("PatientID", "") or ""))
            shift = case.date_shift_days if settings.DEID_DATE_MODE == "shift" else None
            deny = policy.deny_by_default(batch.institution)
            burned_in = False
            deidentified = []
            for item in files:
                result = deidentify.deidentify_dataset(
                    item.dataset, case_code=case.code, date_shift_days=shift, uid_secret=settings.DEID_SECRET,
                    options=options, deny_by_default=deny,
                )
                burned_in = burned_in or result.burned_in
                deidentified.append(result)
            first = files[0].dataset
            series, created = Series.objects.get_or_create(
                series_uid=str(first.SeriesInstanceUID),
                defaults={
                    "case": case,
                    "study_uid": str(first.StudyInstanceUID),
                    "sequence": sequence,
                    "version": Version.DL if vendor_reason else Version.CONVENTIONAL,
                    "source": SeriesSource.VENDOR if vendor_reason else SeriesSource.UPLOADED,
                    "status": (SeriesStatus.HELD_BURNED_IN if burned_in or text_reason
                               else SeriesStatus.HELD_VENDOR if vendor_reason else SeriesStatus.READY),
                    "hold_reason": burned_in_text.combined_reason(
                        text_reason, burned_in_text.HEADER_FLAG if burned_in else "", vendor_reason or ""),
                    "description": str(first.get("SeriesDescription", "") or "")[:200],
                    "rows": int(first.Rows),
                    "columns": int(first.Columns),
                    "pixel_spacing": [float(v) for v in first.get("PixelSpacing", []) or []],
                    "slice_thickness": float(first.SliceThickness) if first.get("SliceThickness") else None,
                    "orientation": [float(v) for v in first.get("ImageOrientationPatient", []) or []],
                    "acquisition": acquisition_parameters(first),
                },
            )
            if not created and (burned_in or text_reason) and series.status == SeriesStatus.READY:
                series.status = SeriesStatus.HELD_BURNED_IN
                series.hold_reason = burned_in_text.combined_reason(
                    text_reason, burned_in_text.HEADER_FLAG if burned_in else "")
                series.save(update_fields=["status", "hold_reason"])
            results = []
            kept = []
            kept_results = []
            kept_boxes = []
            for item, deid, boxes in zip(files, deidentified, text_check.boxes, strict=True):
                ds = item.dataset
                sop_uid = str(ds.SOPInstanceUID)
                if Instance.objects.filter(sop_uid=sop_uid).exists():
                    results.append(
                        _record(batch, item.name, FileOutcome.DUPLICATE, "duplicate",
                                "This image is already stored; the copy was ignored.")
                    )
                    continue
                instance = storage.store_instance(series, ds, written)
                kept.append(ds)
                kept_results.append(deid)
                kept_boxes.append((instance, boxes))
                results.append(_accepted(batch, item.name, series, instance))
            if kept:
                # The display window, once, while the volume is in memory (from the store if slices were added).
                windows.save_window(
                    series, blinding.display_window(kept) if created else windows.stored_window(series)
                )
            UploadFileResult.objects.bulk_create(results)
            # The evidence of what de-identification did to the stored files, committed with them (counts only).
            record = evidence.record_series(batch, series, kept_results, deny_by_default=deny)
            burned_in_text.record(batch, series, record, text_check, kept_boxes)
            if created and defaced is not None:
                faces.record(series, defaced)  # before enhancement is asked: its DL versions take the same cut
            if created:
                enhancement.request_enhancement(series)
                vendor.link_held_vendor_series(series, batch)  # a vendor series and its conventional one, in any order
            return results
    except BaseException:
        storage.discard_files(written)
        raise


def _reject_all(batch: UploadBatch, files: list[ReadFile], reason: str, message: str) -> None:
    """Rejects the files that have no outcome yet. One that has one keeps it: another run of the same batch (a worker
    taken for dead that was only slow) may have stored it meanwhile, and that is why storing failed here."""
    known = set(batch.results.filter(name__in=[f.name for f in files]).values_list("name", flat=True))
    UploadFileResult.objects.bulk_create(
        [_record(batch, f.name, FileOutcome.REJECTED, reason, message) for f in files if f.name not in known]
    )


def group_by_series(paths: list[Path]) -> dict[str, list[Path]]:
    """A cheap first pass over the headers, so that only one series at a time is held in memory.

    Files whose header cannot be read land in the group "" and get their reason from full validation.
    """
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            uid = str(header.get("SeriesInstanceUID", "") or "")
        except Exception:  # noqa: BLE001 - any unreadable header is validated (and explained) in the next pass
            uid = ""
        groups[uid].append(path)
    return groups


def _without_allow_list(batch: UploadBatch, by_series: dict[str, list[ReadFile]]) -> dict[str, list[ReadFile]]:
    """In deny-by-default mode a file whose SOP class has no allow-list is rejected, never stored unreviewed."""
    kept: dict[str, list[ReadFile]] = {}
    for uid, files in by_series.items():
        for f in files:
            try:
                allowed_tags(str(f.dataset.SOPClassUID))
            except NoAllowList as exc:
                _reject_all(batch, [f], NO_ALLOW_LIST, str(exc))
            else:
                kept.setdefault(uid, []).append(f)
    return kept


def _process_group(batch: UploadBatch, paths: list[Path]) -> None:
    """Validates the files of one series and stores the valid ones atomically."""
    by_series: dict[str, list[ReadFile]] = defaultdict(list)
    rejected: list[UploadFileResult] = []
    for path in paths:
        name = staged_name(batch, path)
        outcome = validation.read_instance(path, max_bytes=settings.INGEST_MAX_FILE_BYTES)
        if outcome.rejection is not None:
            rejected.append(_record(batch, name, FileOutcome.REJECTED, outcome.rejection.reason,
                                    outcome.rejection.message))
            continue
        by_series[str(outcome.dataset.SeriesInstanceUID)].append(ReadFile(name, outcome.dataset))
    UploadFileResult.objects.bulk_create(rejected)
    if policy.deny_by_default(batch.institution):
        by_series = _without_allow_list(batch, by_series)
    for files in by_series.values():
        problems = validation.check_series({f.name: f.dataset for f in files})
        for f in files:
            if f.name in problems:
                _reject_all(batch, [f], problems[f.name].reason, problems[f.name].message)
        files = [f for f in files if f.name not in problems]
        if not files:
            continue
        try:
            store_series(batch, files)
        except DefacingError as exc:
            _reject_all(batch, files, faces.DEFACE_FAILED, f"The site asks for faces to be removed from 3D head series, "
                                                          f"and this one could not be defaced: {exc}")
        except Exception:
            logger.exception("Storing a series of upload %s failed", batch.pk)
            _reject_all(batch, files, "store_failed", "The series could not be stored; nothing of it was kept.")


def public_error(exc: BaseException) -> str:
    """A failed batch's reason as shown: never the exception's text, which could quote a header value."""
    return f"{type(exc).__name__}: the upload could not be processed; it can be retried."


def process_batch(batch_id: int) -> UploadBatch:
    """Processes every staged file of a batch that has no outcome yet; safe to run again after a crash.

    A batch already done, failed, or being processed by a live worker is returned as it is."""
    batch = UploadBatch.objects.select_related("institution").get(pk=batch_id)
    if lifecycle.start(UploadBatch, batch_id) is None:
        return batch
    done = set(batch.results.values_list("name", flat=True))
    pending = [path for path in staged_files(batch) if staged_name(batch, path) not in done]
    for paths in group_by_series(pending).values():
        _process_group(batch, paths)
        UploadBatch.objects.filter(pk=batch.pk).update(processed_count=batch.results.count())
        lifecycle.beat(UploadBatch, batch.pk)
    return finish_batch(batch)


def finish_batch(batch: UploadBatch) -> UploadBatch:
    """Removes the staged (identifiable) files, then counts outcomes and sets the final status.

    In that order, so a batch shown as finished never still has identifiable files on disk, and a crash in
    between leaves a batch that is not finished and whose re-run only counts and closes it.
    """
    shutil.rmtree(staging_dir(batch), ignore_errors=True)
    counts = {o: batch.results.filter(outcome=o).count() for o in FileOutcome.values}
    batch.processed_count = sum(counts.values())
    batch.accepted_count = counts[FileOutcome.ACCEPTED]
    batch.duplicate_count = counts[FileOutcome.DUPLICATE]
    batch.rejected_count = counts[FileOutcome.REJECTED]
    batch.held_count = batch.results.filter(outcome=FileOutcome.ACCEPTED, reason__startswith="held_").count()
    lifecycle.finish(
        batch, outcome=finished_outcome(batch), processed_count=batch.processed_count,
        accepted_count=batch.accepted_count, duplicate_count=batch.duplicate_count,
        rejected_count=batch.rejected_count, held_count=batch.held_count,
    )
    batch.refresh_from_db()
    logger.info(
        "Upload %s: %s accepted, %s duplicate, %s rejected",
        batch.pk, batch.accepted_count, batch.duplicate_count, batch.rejected_count,
    )
    return batch


def finished_outcome(batch: UploadBatch) -> str:
    """Nothing stored, some files rejected, some series held, or done: the worst thing the coordinator must know."""
    if batch.rejected_count and not (batch.accepted_count or batch.duplicate_count):
        return BatchOutcome.REJECTED
    if batch.rejected_count:
        return BatchOutcome.DONE_WITH_REJECTIONS
    if batch.held_count:
        return BatchOutcome.DONE_WITH_HOLDS
    return BatchOutcome.DONE
