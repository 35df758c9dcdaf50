"""Serving a reader's slices: the stored instances, read from the image store, through the blinding filter.

A slice is served alone (the viewer's request for the slice it shows) or with its neighbours in one range, so that
loading a 176-slice series costs one access check per range instead of one per slice (issue 12, item 6). Both
paths check the same rule (`reading.get_panel`) on every request; nothing about access is cached between requests.
"""

import secrets

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
    return blinded_range(reader, image_token, slice_index, slice_index)[0]


MAX_RANGE = 32  # slices in one range request: 16 MiB of 512^2 slices at most


class BadRange(ValueError):
    """A range that no stack can have (last before first, or longer than MAX_RANGE): answered 400 with the reason."""


def blinded_range(reader: User, image_token: str, first: int, last: int) -> list[bytes]:
    """Part 10 bytes of slices first..last (inclusive, stack order) of a panel the reader may see, checked once
    for the whole range; NotFound for a panel that is not theirs or a range beyond its stack, as for one slice."""
    if first < 0 or last < first:
        raise BadRange("A slice range runs from a first to a last slice index, first <= last, both >= 0.")
    if last - first + 1 > MAX_RANGE:
        raise BadRange(f"At most {MAX_RANGE} slices per request.")
    panel = get_panel(reader, image_token)
    instances = list(stack(panel.series_id)[first : last + 1])
    if len(instances) != last - first + 1:
        raise NotFound
    window = windows.series_window(panel.series)
    return [
        blinding.encode(blinding.blind(_read(instance), panel.image_token, index, window))
        for index, instance in enumerate(instances, start=first)
    ]


def multipart_related(parts: list[bytes]) -> tuple[bytes, str]:
    """A multipart/related body of application/dicom parts (the DICOMweb framing) and its Content-Type. Each part
    gives its Content-Length, so a client splits the body without scanning pixel data; the boundary is random, so
    it tells nothing about the images."""
    boundary = secrets.token_hex(16)
    chunks = []
    for data in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {len(data)}\r\n\r\n".encode(),
                   data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'
