"""Burned-in text: every stored image is checked by OCR, a series with text is held until its site's coordinator
(or an admin) blanks the boxes or rejects the series, and nothing with detected text is released to readers.

- ``check_series`` runs before the series' transaction (OCR is slow; the transaction stays short);
  ``hold_reason`` says why a series is held; ``record`` writes the check and one ``TextFinding`` per image with
  text, in the transaction that stores the series.
- ``blank_series`` replaces each image with text by a new instance whose boxes are set to the image's darkest value
  (new SOP Instance UID, Burned In Annotation NO, Clean Pixel Data 113101 declared), checks the new pixels again, and
  releases the series when no text is left; ``reject_series`` rejects it. Both are audited (the findings and the
  series are in the audit trail) and counted in the upload's certificate.
- Without the OCR engine nothing passes unchecked: every series is held with the reason, ``release_refused`` keeps
  it held, and ``recheck`` (``manage.py check_burned_in_text``) checks it once the engine is installed.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.imaging import blinding, deidentify
from apps.imaging.models import Instance, Series, SeriesSource, SeriesStatus, UploadFileResult
from apps.imaging.services import enhancement, storage, vendor, windows
from apps.privacy import text_detection
from apps.privacy.models import FindingStatus, SeriesDeidentification, SeriesTextCheck, TextFinding
from apps.privacy.services import evidence

logger = logging.getLogger(__name__)

HEADER_FLAG = ("The header says the pixels carry burned-in annotation (Burned In Annotation = YES): look at the images, "
               "then release or reject the series.")
TEXT_FOUND = "OCR found text in the pixels of {n} image(s): blank the boxes or reject the series (Cases page)."
NOT_CHECKED = "The pixels could not be checked for burned-in text ({why}), held until they are checked."
# The start of every hold reason this module sets, so it can tell its own holds from the header's or a vendor's.
OWN_REASONS = (TEXT_FOUND.split("{")[0], NOT_CHECKED.split("(")[0])


def check_series(datasets) -> text_detection.SeriesCheck:
    """OCR on every image of a series (modality values, before any window), in the order given."""
    return text_detection.check_slices([blinding.modality_pixels(ds) for ds in datasets])


def hold_reason(check: text_detection.SeriesCheck) -> str:
    if check.unavailable:
        return NOT_CHECKED.format(why=check.unavailable)
    if check.images_with_text:
        return TEXT_FOUND.format(n=check.images_with_text)
    return ""


def combined_reason(*reasons: str) -> str:
    return "; ".join(r for r in reasons if r)[:300]


def record(batch, series: Series, record_row: SeriesDeidentification | None, check: text_detection.SeriesCheck,
           stored: list[tuple[Instance, list]]) -> None:
    """The check's counts for the upload's evidence and one finding per stored image with text (boxes only)."""
    if record_row is not None:
        row, _ = SeriesTextCheck.objects.get_or_create(record=record_row)
        row.checked += 0 if check.unavailable else len(stored)
        row.with_text += sum(1 for _, boxes in stored if boxes)
        row.engine, row.unavailable = check.engine, check.unavailable
        row.seconds += check.seconds
        row.save()
    TextFinding.objects.bulk_create([
        TextFinding(batch=batch, series=series, instance=instance, sop_uid=instance.sop_uid, engine=check.engine,
                    boxes=[list(box) for box in boxes])
        for instance, boxes in stored if boxes
    ])


def open_findings(series: Series):
    return TextFinding.objects.filter(series=series, status=FindingStatus.OPEN)


def unchecked(series: Series) -> bool:
    """Some image of the series was stored while the OCR engine was missing and has not been checked since."""
    return SeriesTextCheck.objects.filter(record__series=series).exclude(unavailable="").exists()


def release_refused(series: Series) -> str:
    """Why the series may not be shown to readers yet ('' when nothing in this module holds it)."""
    if open_findings(series).exists():
        return ("OCR found text in this series' pixels: blank the boxes or reject the series; it cannot be released "
                "as it is.")
    if unchecked(series):
        return "This series' pixels have not been checked for burned-in text yet (the OCR engine was missing)."
    return ""


def _blanked_dataset(ds, boxes: list) -> tuple:
    """The instance with its boxes set to the image's darkest stored value, as a new de-identified instance."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    stored = ds.pixel_array
    blanked = text_detection.blank(stored, boxes, stored.min())
    ds.PixelData = blanked.astype(stored.dtype).tobytes()
    new_uid = deidentify.remap_uid(f"{ds.SOPInstanceUID}/blanked", settings.DEID_SECRET)
    ds.SOPInstanceUID = new_uid
    ds.file_meta.MediaStorageSOPInstanceUID = new_uid
    ds.BurnedInAnnotation = "NO"
    declared = [str(item.CodeValue) for item in ds.get("DeidentificationMethodCodeSequence", [])]
    kept = tuple(c for c in declared if c in deidentify.OPTION_CODES and c not in (
        deidentify.PROFILE_CODE, deidentify.CLEAN_DESCRIPTORS, deidentify.MODIFIED_DATES))
    modified = str(ds.get("LongitudinalTemporalInformationModified", "")) == "MODIFIED"
    deidentify.mark_deidentified(ds, date_shift_days=0 if modified else None,
                                 options=tuple(dict.fromkeys((*kept, deidentify.CLEAN_PIXEL_DATA))))
    return ds, new_uid


def _release_if_clear(series: Series) -> bool:
    """Back to the state it would have had without text, once nothing holds it here; True when released."""
    if series.status != SeriesStatus.HELD_BURNED_IN or release_refused(series):
        return False
    remaining = [r for r in series.hold_reason.split("; ") if r and not r.startswith(OWN_REASONS)]
    if series.source == SeriesSource.VENDOR:
        series.status = SeriesStatus.HELD_VENDOR
    elif HEADER_FLAG in remaining:
        return False  # the header's own flag: the coordinator looks and releases
    else:
        series.status = SeriesStatus.READY
    series.hold_reason = "; ".join(remaining)
    series.save(update_fields=["status", "hold_reason"])
    if series.source == SeriesSource.VENDOR:
        vendor.link_held_vendor_series(series)  # linked now if it matches one conventional series, as on ingest
    else:
        enhancement.request_enhancement(series)
    return True


@transaction.atomic
def blank_series(series: Series, user) -> dict:
    """Blanks every open finding of the series into new instances; returns counts and whether it was released."""
    series = Series.objects.select_for_update().get(pk=series.pk)
    findings = list(open_findings(series).select_related("instance", "batch"))
    if not findings:
        raise ValueError("This series has no burned-in text waiting to be blanked.")
    written: list[str] = []
    old_files: list[str] = []
    still_text = 0
    try:
        for finding in findings:
            old = finding.instance
            ds, new_uid = _blanked_dataset(storage.read_dataset(old), finding.boxes)
            new_instance = storage.store_instance(series, ds, written)
            UploadFileResult.objects.filter(instance=old).update(instance=new_instance)
            old_files.append(old.file.name)
            finding.status, finding.blanked_sop_uid = FindingStatus.BLANKED, new_uid
            finding.resolved_by, finding.resolved_at = user, timezone.now()
            finding.save()  # audited, before the old instance goes (its link is set to null then)
            old.delete()
            if finding.batch is not None:
                evidence.add_option(finding.batch, series, deidentify.CLEAN_PIXEL_DATA, 1)
            boxes = text_detection.detect(blinding.modality_pixels(ds))
            if boxes:
                still_text += 1
                TextFinding.objects.create(batch=finding.batch, series=series, instance=new_instance,
                                           sop_uid=new_uid, engine=text_detection.engine_version(),
                                           boxes=[list(b) for b in boxes])
        windows.save_window(series, blinding.display_window(
            storage.read_dataset(i) for i in series.instances.all()))
        if still_text:
            series.hold_reason = combined_reason(
                TEXT_FOUND.format(n=still_text),
                *[r for r in series.hold_reason.split("; ") if r and not r.startswith(OWN_REASONS)])
            series.save(update_fields=["hold_reason"])
        released = _release_if_clear(series)
    except BaseException:
        storage.discard_files(written)
        raise
    transaction.on_commit(lambda: storage.discard_files(old_files))
    logger.info("Series %s: %d image(s) blanked, %d still with text", series.pk, len(findings), still_text)
    return {"blanked": len(findings), "still_with_text": still_text, "released": released}


@transaction.atomic
def dismiss_series(series: Series, user) -> bool:
    """The coordinator has looked at every box and confirms none holds identifying text (OCR read anatomy or noise
    as letters): the findings are closed as dismissed, by whom and when (audited, counted in the certificate), and
    the series is released when nothing else holds it. Returns whether it was released."""
    series = Series.objects.select_for_update().get(pk=series.pk)
    findings = list(open_findings(series))
    if not findings:
        raise ValueError("This series has no burned-in text finding waiting for a decision.")
    for finding in findings:
        finding.status, finding.resolved_by, finding.resolved_at = FindingStatus.DISMISSED, user, timezone.now()
        finding.save()
    remaining = [r for r in series.hold_reason.split("; ") if r and not r.startswith(OWN_REASONS)]
    if series.status == SeriesStatus.HELD_BURNED_IN and remaining != series.hold_reason.split("; "):
        series.hold_reason = "; ".join(remaining)
        series.save(update_fields=["hold_reason"])
    logger.info("Series %s: %d text finding(s) dismissed by user %s", series.pk, len(findings), user.pk)
    return _release_if_clear(series)


@transaction.atomic
def reject_series(series: Series, user) -> None:
    """Rejects the series (never read) and closes its findings; audited."""
    series = Series.objects.select_for_update().get(pk=series.pk)
    for finding in open_findings(series):
        finding.status, finding.resolved_by, finding.resolved_at = FindingStatus.REJECTED, user, timezone.now()
        finding.save()
    series.status = SeriesStatus.REJECTED
    series.save(update_fields=["status"])


@transaction.atomic
def recheck(series: Series) -> text_detection.SeriesCheck:
    """Checks a series stored while the OCR engine was missing; releases it when no text is found."""
    series = Series.objects.select_for_update().get(pk=series.pk)
    instances = list(series.instances.all())
    check = check_series(storage.read_dataset(i) for i in instances)
    if check.unavailable:
        return check
    for row in SeriesTextCheck.objects.filter(record__series=series).exclude(unavailable=""):
        row.checked, row.unavailable, row.engine = row.record.instances, "", check.engine
        row.with_text = check.images_with_text
        row.seconds += check.seconds
        row.save()
    batch_of = {r.instance_id: r.batch for r in UploadFileResult.objects.filter(instance__in=instances)}
    TextFinding.objects.bulk_create([
        TextFinding(batch=batch_of.get(i.pk), series=series, instance=i, sop_uid=i.sop_uid, engine=check.engine,
                    boxes=[list(b) for b in boxes])
        for i, boxes in zip(instances, check.boxes, strict=True) if boxes
    ])
    others = [r for r in series.hold_reason.split("; ") if r and not r.startswith(OWN_REASONS)]
    series.hold_reason = combined_reason(hold_reason(check), *others)
    series.save(update_fields=["hold_reason"])
    _release_if_clear(series)
    return check
