"""Serving a reader's slice: the stored instance, read from the image store, through the blinding filter."""

import pydicom
from django.core.files.storage import default_storage

from apps.accounts.models import User
from apps.imaging import blinding
from apps.imaging.models import Instance
from apps.studies.models import ReadingTask, TaskPanel
from apps.studies.services.reading import NotFound, get_panel, stack


def _read(instance: Instance) -> pydicom.Dataset:
    with default_storage.open(instance.file.name, "rb") as handle:
        return pydicom.dcmread(handle)


def series_window(panel: TaskPanel) -> tuple[float, float]:
    """The display window of the panel's series, computed once from the whole volume and kept on every panel
    that shows that series (the same computation for both versions)."""
    if panel.window_center is not None and panel.window_width is not None:
        return panel.window_center, panel.window_width
    center, width = blinding.volume_window(
        blinding.modality_pixels(_read(instance)) for instance in stack(panel.series_id)
    )
    TaskPanel.objects.filter(series_id=panel.series_id).update(window_center=center, window_width=width)
    panel.window_center, panel.window_width = center, width
    return center, width


def prepare_windows(task: ReadingTask) -> None:
    """Computes the panels' display windows when the task is opened, before the viewer asks for slices, so
    that its parallel slice requests do not each compute it."""
    for panel in task.panels.filter(window_center__isnull=True):
        series_window(panel)


def blinded_slice(reader: User, image_token: str, slice_index: int) -> bytes:
    """Part 10 bytes of one slice of a panel the reader may see; NotFound for anything else."""
    panel = get_panel(reader, image_token)
    instance = stack(panel.series_id)[slice_index : slice_index + 1].first()
    if instance is None:
        raise NotFound
    window = series_window(panel)
    return blinding.encode(blinding.blind(_read(instance), panel.image_token, slice_index, window))
