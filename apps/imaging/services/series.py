"""Coordinator corrections to a series: the sequence class and whether it is held from readers."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.imaging.models import Series, SeriesStatus
from apps.imaging.services import enhancement, vendor
from apps.privacy.services import burned_in


@transaction.atomic
def save_coordinator_changes(series: Series, changed: set[str]) -> Series:
    """Saves a corrected series; a corrected sequence is remembered as such, and a series that now qualifies
    (for example released from a burned-in hold, or reclassified as a study sequence) gets its enhancement job, and
    a held vendor series of its study that now matches exactly one conventional series is linked to it.

    A series in which OCR found text (or whose pixels could not be checked) is not released: ValidationError."""
    if "status" in changed and series.status not in (SeriesStatus.REJECTED, SeriesStatus.HELD_BURNED_IN):
        refused = burned_in.release_refused(series)
        if refused:
            raise ValidationError(refused)
    if "sequence" in changed:
        series.sequence_overridden = True
    series.save()
    enhancement.request_enhancement(series)
    vendor.link_held_vendor_series(series)
    return series
