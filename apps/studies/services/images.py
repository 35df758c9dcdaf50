"""Serving a reader's slice: the one stored instance, read from the image store, through the blinding filter."""

import pydicom
from django.core.files.storage import default_storage

from apps.accounts.models import User
from apps.imaging import blinding
from apps.imaging.models import Instance, Series
from apps.imaging.services import windows
from apps.studies.models import ReadingTask
from apps.studies.services.reading import NotFound, get_panel, stack


def _read(instance: Instance) -> pydicom.Dataset:
    with default_storage.open(instance.file.name, "rb") as handle:
        return pydicom.dcmread(handle)


def prepare_windows(task: ReadingTask) -> None:
    """Fills in the display window of a series stored before windows were computed when storing, when its task
    is opened, so the viewer's parallel slice requests do not each compute it. One query otherwise."""
    for series in Series.objects.filter(pk__in=task.panels.values("series_id"), window_center__isnull=True):
        windows.series_window(series)


def blinded_slice(reader: User, image_token: str, slice_index: int) -> bytes:
    """Part 10 bytes of one slice of a panel the reader may see; NotFound for anything else.

    Reads only that instance; the window is the series' stored one, the same computation for both versions.
    """
    panel = get_panel(reader, image_token)
    instance = stack(panel.series_id)[slice_index : slice_index + 1].first()
    if instance is None:
        raise NotFound
    window = windows.series_window(panel.series)
    return blinding.encode(blinding.blind(_read(instance), panel.image_token, slice_index, window))
