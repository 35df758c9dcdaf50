"""Vendor-enhanced series: linking a vendor's DL output to the conventional series it was made from.

A held vendor series is linked by a coordinator with ``attach_vendor_series``
(``POST /api/imaging/series/<id>/attach-vendor/``) as the vendor DL version of its conventional series.
"""

import logging

from django.db import transaction

from apps.imaging.models import Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import dl_versions

logger = logging.getLogger(__name__)


def _geometry(series: Series) -> tuple:
    locations = tuple(round(v, 2) for v in series.instances.values_list("slice_location", flat=True))
    return (series.rows, series.columns, locations,
            tuple(round(v, 3) for v in series.pixel_spacing), tuple(round(v, 3) for v in series.orientation))


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
    if conventional.sequence != vendor.sequence:
        return (f"The vendor-enhanced series is classified {vendor.sequence}, the conventional series "
                f"{conventional.sequence}; correct the sequence first if a classification is wrong.")
    return None


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

    Both must belong to the same study and have the same geometry and sequence, the vendor series not linked yet and
    the conventional series without a vendor version; otherwise a ValueError says what is wrong. The engine's DL
    versions of the conventional series stay: they belong to other sources, which other studies may read. The
    changes reach the audit trail (version, source, status, conventional series) with the requesting user as actor.
    """
    conventional = Series.objects.select_for_update().get(pk=conventional.pk)
    vendor = Series.objects.select_for_update().get(pk=vendor.pk)
    problem = vendor_link_problem(conventional, vendor)
    if problem:
        raise ValueError(problem)
    _link(conventional, vendor)
    logger.info("Series %s linked as the vendor-enhanced version of series %s", vendor.pk, conventional.pk)
    return vendor
