"""Vendor-enhanced series: linking a vendor's DL output to the conventional series it was made from.

On ingest (``link_held_vendor_series``) a held vendor series is linked as the vendor DL version of the one
conventional series it matches: same case, study, geometry and sequence, narrowed by the conventional images its
header references (Source Image, Referenced Image and Referenced Series sequences, whose UIDs de-identification
remaps consistently). Several candidates, or none, keep it held with the reason in words; a coordinator then links
it on the Cases page or with ``attach_vendor_series`` (``POST /api/imaging/series/<id>/attach-vendor/``). A link
made wrongly is undone with ``detach_vendor_series`` (``POST /api/imaging/series/<vendor id>/detach-vendor/``) as long
as no study reads the pair; the series is then held again and never linked by itself again.
"""

import logging

import pydicom
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Q

from apps.accounts.access import restrict_to_site
from apps.imaging.models import (
    Instance,
    Series,
    SeriesSource,
    SeriesStatus,
    UploadBatch,
    UploadFileResult,
    Version,
)
from apps.imaging.services import dl_versions, storage
from worker.enhance import qa

logger = logging.getLogger(__name__)

NOT_LINKED = " Not linked: "
UNLINKED = "Unlinked by a coordinator from conventional series"
LINKED_REASON = "vendor_linked"
LINKED_MESSAGE = (
    "Stored: a vendor-enhanced (DL) series, linked as the vendor DL version of conventional series {pk} ({how}); "
    "never enhanced again nor read as conventional."
)


def _geometry(series: Series) -> tuple:
    locations = tuple(round(v, 2) for v in series.instances.values_list("slice_location", flat=True))
    return (series.rows, series.columns, locations,
            tuple(round(v, 3) for v in series.pixel_spacing), tuple(round(v, 3) for v in series.orientation))


def _face_cut(series: Series) -> tuple | None:
    """The voxels cut from the series' face at upload (privacy's SeriesDefacing), or None where none were."""
    try:
        cut = series.defacing
    except ObjectDoesNotExist:
        return None
    return tuple(cut.shape), bytes(cut.mask)


def vendor_link_problem(conventional: Series, vendor: Series) -> str | None:
    """Why `vendor` cannot be linked as the DL version of `conventional`, in words; None when it can."""
    if conventional.pk == vendor.pk:
        return "A series cannot be its own enhanced version."
    if conventional.version != Version.CONVENTIONAL or conventional.source != SeriesSource.UPLOADED:
        return "The series in the URL must be an uploaded conventional series."
    if vendor.conventional_id is not None:
        return "The vendor-enhanced series is already linked to a conventional series."
    if dl_versions.dl_version(conventional, dl_versions.VENDOR) is not None:
        return "The conventional series already has a vendor-enhanced version."
    if conventional.case_id != vendor.case_id or conventional.study_uid != vendor.study_uid:
        return "The vendor-enhanced series belongs to another study than the conventional series."
    ours, theirs = _geometry(conventional), _geometry(vendor)
    names = ("rows", "columns", "slice positions", "pixel spacing", "orientation")
    differing = [name for name, a, b in zip(names, ours, theirs, strict=True) if a != b]
    if differing:
        return f"The series do not match in geometry: {', '.join(differing)} differ."
    if _face_cut(conventional) != _face_cut(vendor):
        return ("The faces of the two series were cut differently at upload (their site removes faces from 3D head "
                "series): side by side, the cut would tell the versions apart, so they are not linked.")
    if conventional.sequence != vendor.sequence:
        return (f"The vendor-enhanced series is classified {vendor.sequence}, the conventional series "
                f"{conventional.sequence}; correct the sequence first if a classification is wrong.")
    return None


def sameness_problem(conventional: Series, vendor: Series) -> str | None:
    """The residual check's "no change" on a pair of equal geometry: a vendor series that is its conventional series
    again (e.g. the conventional series uploaded a second time, marked as vendor output) leaves nothing to compare.
    Only this check: changing structure or contrast is what a vendor's product does, and what the study evaluates.
    Reads both series' pixels, so it runs once, when a pair is about to be linked."""
    residual = qa.residual_stats(storage.stored_volume(conventional), storage.stored_volume(vendor))
    if qa.NO_CHANGE not in residual.failures:
        return None
    return (f"The vendor-enhanced series is (nearly) identical to conventional series {conventional.pk} (residual SD "
            f"{residual.relative_sd:.3f} of the noise SD, under {qa.NO_CHANGE_THRESHOLD}): nothing to compare.")


def _uploaded_conventional(case_id: int, study_uid: str):
    return Series.objects.filter(
        case_id=case_id, study_uid=study_uid, version=Version.CONVENTIONAL, source=SeriesSource.UPLOADED
    ).order_by("pk")


def vendor_candidates(vendor: Series) -> list[int]:
    """Ids of the conventional series a held vendor series could be linked to (same study, geometry, sequence)."""
    if vendor.source != SeriesSource.VENDOR or vendor.conventional_id is not None:
        return []
    others = _uploaded_conventional(vendor.case_id, vendor.study_uid)
    return [series.pk for series in others if vendor_link_problem(series, vendor) is None]


def link_options(vendor: Series) -> list[tuple[Series, str | None]]:
    """For the Cases page: every uploaded conventional series of the held series' case and study, each with why it
    cannot be linked (None where it can), the ones that can first."""
    options = [(series, vendor_link_problem(series, vendor))
               for series in _uploaded_conventional(vendor.case_id, vendor.study_uid)]
    return sorted(options, key=lambda option: option[1] is not None)


def held_series(user) -> list[tuple[Series, list[tuple[Series, str | None]]]]:
    """The held vendor series the user's sites hold, each with its link options."""
    held = restrict_to_site(
        Series.objects.filter(source=SeriesSource.VENDOR, status=SeriesStatus.HELD_VENDOR).select_related("case"),
        user, "case__institution",
    )
    return [(series, link_options(series)) for series in held.order_by("case__code", "pk")]


def referenced_series(vendor: Series) -> set[int]:
    """Ids of the stored series of the same case whose images (or series UID) the vendor series' header names as
    its source, read from its first stored instance (the UIDs there were remapped as the originals' were)."""
    first = vendor.instances.order_by("slice_location", "instance_number").first()
    if first is None:
        return set()
    with storage.image_storage().open(first.file.name, "rb") as stream:
        ds = pydicom.dcmread(stream, stop_before_pixels=True)
    sop_uids, series_uids = set(), set()
    for keyword in ("SourceImageSequence", "ReferencedImageSequence"):
        for item in ds.get(keyword, None) or []:
            if item.get("ReferencedSOPInstanceUID"):
                sop_uids.add(str(item.ReferencedSOPInstanceUID))
    for item in ds.get("ReferencedSeriesSequence", None) or []:
        if item.get("SeriesInstanceUID"):
            series_uids.add(str(item.SeriesInstanceUID))
    ids = set(Instance.objects.filter(sop_uid__in=sop_uids, series__case_id=vendor.case_id)
              .exclude(series_id=vendor.pk).values_list("series_id", flat=True))
    ids |= set(Series.objects.filter(series_uid__in=series_uids, case_id=vendor.case_id)
               .exclude(pk=vendor.pk).values_list("pk", flat=True))
    return ids


def _series_list(ids) -> str:
    return ", ".join(str(pk) for pk in sorted(ids))


def match(vendor: Series) -> tuple[Series | None, str]:
    """The one conventional series a held vendor series belongs to, with how it was told; or None and why not."""
    candidates = vendor_candidates(vendor)
    referenced = referenced_series(vendor) & set(
        _uploaded_conventional(vendor.case_id, vendor.study_uid).values_list("pk", flat=True)
    )
    if len(referenced) == 1:
        target = Series.objects.get(pk=next(iter(referenced)))
        if target.pk in candidates:
            return target, "same study, geometry and sequence, and its header references it as its source"
        problem = vendor_link_problem(target, vendor) or ""
        return None, (f"its header references conventional series {target.pk} as its source, which it does not "
                      f"match: {problem[:1].lower()}{problem[1:]}")
    if len(referenced) > 1:
        both = [pk for pk in candidates if pk in referenced]
        if len(both) == 1:
            return Series.objects.get(pk=both[0]), "same study, geometry and sequence as a series its header references"
    if len(candidates) == 1:
        return Series.objects.get(pk=candidates[0]), "the only series of the same study, geometry and sequence"
    if not candidates:
        return None, ("no conventional series of the same study, geometry and sequence is stored (yet); it is "
                      "linked when one arrives, or link it on the Cases page.")
    return None, (f"{len(candidates)} conventional series match it in study, geometry and sequence (series "
                  f"{_series_list(candidates)}); link it to the one it was made from on the Cases page or with the "
                  "attach-vendor API.")


def _link(conventional: Series, vendor: Series) -> Series:
    vendor.version, vendor.source, vendor.sequence = Version.DL, SeriesSource.VENDOR, conventional.sequence
    if vendor.status == SeriesStatus.HELD_VENDOR:
        vendor.status, vendor.hold_reason = SeriesStatus.READY, ""
    dl_versions.link(conventional, vendor, dl_versions.VENDOR, save=False)
    vendor.save(update_fields=["version", "source", "sequence", "status", "hold_reason", "conventional", "dl_model",
                               "dl_factor"])
    return vendor


@transaction.atomic
def attach_vendor_series(conventional: Series, vendor: Series) -> Series:
    """Links an uploaded vendor-enhanced series (e.g. from commercial DL software) as the vendor DL version of a
    conventional one and releases its vendor hold.

    Both must belong to the same study, have the same geometry and sequence and differ in their pixels, the vendor
    series not linked yet and the conventional series without a vendor version; otherwise a ValueError says what is
    wrong. The engine's DL versions of the conventional series stay: they belong to other sources, which other
    studies may read. The changes reach the audit trail (version, source, status, conventional series) with the
    requesting user as actor.
    """
    conventional = Series.objects.select_for_update().get(pk=conventional.pk)
    vendor = Series.objects.select_for_update().get(pk=vendor.pk)
    problem = vendor_link_problem(conventional, vendor) or sameness_problem(conventional, vendor)
    if problem:
        raise ValueError(problem)
    _link(conventional, vendor)
    logger.info("Series %s linked as the vendor-enhanced version of series %s", vendor.pk, conventional.pk)
    return vendor


def _detection(hold_reason: str) -> str:
    """The hold reason's first part: why the series was recognised as vendor-enhanced (the classifier's words)."""
    return hold_reason.split(NOT_LINKED, 1)[0]


def link_held_vendor_series(stored: Series, batch: UploadBatch | None = None) -> list[Series]:
    """After a series is stored: links each held vendor series of its case and study that now matches exactly one
    conventional series, and says in the hold reason of the others why not. The per-file outcomes of ``batch`` for
    a series linked here say it was linked. Runs inside the caller's transaction; returns the series linked."""
    vendors = Series.objects.select_for_update().filter(
        case_id=stored.case_id, study_uid=stored.study_uid, source=SeriesSource.VENDOR,
        status=SeriesStatus.HELD_VENDOR, conventional__isnull=True,
    ).exclude(hold_reason__startswith=UNLINKED).order_by("pk")  # a coordinator's unlink is not undone by itself
    linked = []
    for vendor in vendors:
        target, how = match(vendor)
        if target is None:
            reason = f"{_detection(vendor.hold_reason)}{NOT_LINKED}{how}"[:300]
            if reason != vendor.hold_reason:
                vendor.hold_reason = reason
                vendor.save(update_fields=["hold_reason"])
            continue
        target = Series.objects.select_for_update().get(pk=target.pk)
        if vendor_link_problem(target, vendor) is not None:
            continue
        same = sameness_problem(target, vendor)
        if same:
            vendor.hold_reason = f"{_detection(vendor.hold_reason)}{NOT_LINKED}{same}"[:300]
            vendor.save(update_fields=["hold_reason"])
            continue
        _link(target, vendor)
        linked.append(vendor)
        logger.info("Vendor series %s linked on ingest to conventional series %s (%s)", vendor.pk, target.pk, how)
        if batch is not None:
            UploadFileResult.objects.filter(
                batch=batch, instance__series=vendor, reason=SeriesStatus.HELD_VENDOR
            ).update(reason=LINKED_REASON, message=LINKED_MESSAGE.format(pk=target.pk, how=how)[:500])
    return linked


def linked_series(user) -> list[Series]:
    """The linked vendor series the user's sites hold, with their conventional series: what can be unlinked."""
    linked = restrict_to_site(
        Series.objects.filter(source=SeriesSource.VENDOR, conventional__isnull=False).select_related(
            "case", "conventional"),
        user, "case__institution",
    )
    return list(linked.order_by("case__code", "pk"))


def detach_problem(vendor: Series) -> str | None:
    """Why the vendor series' link cannot be undone, in words; None when it can."""
    # Studies build on imaging, not the other way round: imported here.
    from apps.studies.models import DLSourceKind, TaskPanel

    if vendor.source != SeriesSource.VENDOR or vendor.conventional_id is None:
        return "The series is not a linked vendor-enhanced series."
    reads_pair = Q(series=vendor) | Q(series_id=vendor.conventional_id, task__study__dl_source=DLSourceKind.VENDOR)
    study = TaskPanel.objects.filter(reads_pair).values_list("task__study__title", flat=True).first()
    if study is not None:
        return (f"Study '{study}' reads this pair; its readers' scores rest on the link, so it cannot be undone. "
                "Remove the case from the study first (before it opens) or keep the link.")
    return None


@transaction.atomic
def detach_vendor_series(vendor: Series) -> Series:
    """Undoes a vendor link made wrongly (by hand or on ingest): the series is held again, as a vendor series waiting
    to be linked, and is never linked by itself again (a coordinator links it to the right series). Refused with a
    ValueError when a study reads the pair. Audited like the link (version, source, status, conventional series)."""
    vendor = Series.objects.select_for_update().get(pk=vendor.pk)
    problem = detach_problem(vendor)
    if problem:
        raise ValueError(problem)
    previous = vendor.conventional_id
    vendor.conventional, vendor.status = None, SeriesStatus.HELD_VENDOR
    vendor.hold_reason = (f"{UNLINKED} {previous}: link it to the series it was made from on the Cases page "
                          "(it is not linked by itself again).")
    vendor.save(update_fields=["conventional", "status", "hold_reason"])
    logger.info("Vendor series %s unlinked from conventional series %s", vendor.pk, previous)
    return vendor
