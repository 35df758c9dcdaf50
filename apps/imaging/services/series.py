"""Coordinator corrections to a series: the sequence class and whether it is held from readers."""

from django.db import transaction

from apps.imaging.models import Series
from apps.imaging.services import enhancement


@transaction.atomic
def save_coordinator_changes(series: Series, changed: set[str]) -> Series:
    """Saves a corrected series; a corrected sequence is remembered as such, and a series that now qualifies
    (for example released from a burned-in hold, or reclassified as a study sequence) gets its enhancement job."""
    if "sequence" in changed:
        series.sequence_overridden = True
    series.save()
    enhancement.request_enhancement(series)
    return series
