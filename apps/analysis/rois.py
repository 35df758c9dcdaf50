"""Elliptical ROIs for SNR/CNR: drawn once by a reader, measured on both versions of the image, server-side.

Pixel statistics come from the stored DICOM pixel values with RescaleSlope/Intercept applied (the original
intensity scale), never from what the screen showed. Geometry is in pixel indices of the series' stack, the
order the reading page scrolls through (`apps.studies.services.reading.stack`); the centre of pixel
(row r, column c) is at (r, c). A Cornerstone image coordinate (x, y) (pixel corners at integers) is
(row = y - 0.5, col = x - 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom
from django.core.files.storage import default_storage
from django.db import transaction

from apps.accounts.models import User
from apps.analysis.models import RoiLabel, RoiMeasurement
from apps.imaging.models import Series, SeriesStatus, Version
from apps.imaging.services import dl_versions
from apps.studies.models import ReadingTask
from apps.studies.services import sources
from apps.studies.services.reading import review_only, review_reason, stack

MIN_PIXELS = 2


class RoiError(ValueError):
    """An ROI that cannot be measured, with a message for the reader (never naming a version)."""


class RoiReadOnly(RoiError):
    """The reader has finished the study: their ROIs, like their scores, stay as submitted."""


def _require_changeable(task: ReadingTask) -> None:
    if task.study.is_locked:
        raise RoiError("The study is locked.")
    if review_only(task):
        raise RoiReadOnly(review_reason(task))


@dataclass(frozen=True)
class Ellipse:
    slice_index: int
    center_row: float
    center_col: float
    radius_rows: float
    radius_cols: float

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Pixels whose centres lie inside or on the ellipse."""
        rows, cols = np.ogrid[: shape[0], : shape[1]]
        inside = ((rows - self.center_row) / self.radius_rows) ** 2 + ((cols - self.center_col) / self.radius_cols) ** 2
        return inside <= 1.0

    def check(self, shape: tuple[int, int], slices: int) -> None:
        if not 0 <= self.slice_index < slices:
            raise RoiError(f"slice_index must be between 0 and {slices - 1}.")
        if min(self.radius_rows, self.radius_cols) < 0.5:
            raise RoiError("The ellipse is smaller than a pixel.")
        if (
            self.center_row - self.radius_rows < -0.5
            or self.center_row + self.radius_rows > shape[0] - 0.5
            or self.center_col - self.radius_cols < -0.5
            or self.center_col + self.radius_cols > shape[1] - 0.5
        ):
            raise RoiError("The ellipse reaches outside the image.")


def modality_values(ds: pydicom.Dataset) -> np.ndarray:
    """Stored pixel values in the original intensity scale, as float64 (no rounding, no clipping, no window)."""
    pixels = ds.pixel_array
    if pixels.ndim != 2:
        raise RoiError("Only single-frame grey-scale images can be measured.")
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    return pixels.astype(np.float64) * slope + intercept


def roi_statistics(values: np.ndarray, mask: np.ndarray) -> tuple[float, float, int]:
    """(mean, sample SD with n - 1, pixel count) of the values inside the mask."""
    inside = values[mask]
    if inside.size < MIN_PIXELS:
        raise RoiError(f"The ellipse covers fewer than {MIN_PIXELS} pixel centres.")
    return float(inside.mean()), float(inside.std(ddof=1)), int(inside.size)


def slice_values(series: Series, slice_index: int) -> np.ndarray:
    instance = stack(series.pk)[slice_index : slice_index + 1].first()
    if instance is None:
        raise RoiError("No such slice.")
    with default_storage.open(instance.file.name, "rb") as handle:
        return modality_values(pydicom.dcmread(handle))


def measure(series: Series, ellipse: Ellipse) -> tuple[float, float, int]:
    values = slice_values(series, ellipse.slice_index)
    return roi_statistics(values, ellipse.mask(values.shape))


def image_pair(task: ReadingTask) -> tuple[Series, Series]:
    """The conventional series of the task's image and its DL version from the study's source, whichever the
    task shows (a DL series the task shows is that version)."""
    shown = task.panels.select_related("series__conventional").first()
    if shown is None:
        raise RoiError("This task has no image.")
    series = shown.series
    if series.version == Version.CONVENTIONAL:
        conventional = series
        try:
            dl = dl_versions.dl_version(series, sources.study_source(task.study))
        except ValueError:
            dl = None
    else:
        conventional, dl = series.conventional, series
    if conventional is None or dl is None or {conventional.status, dl.status} != {SeriesStatus.READY}:
        raise RoiError("This image cannot be measured.")
    return conventional, dl


def save_roi(reader: User, task: ReadingTask, label: str, ellipse: Ellipse) -> RoiMeasurement:
    """Measure the ellipse on both versions and store it; drawing the same label on the task again replaces it."""
    if label not in RoiLabel.values:
        raise RoiError(f"label must be one of {', '.join(RoiLabel.values)}.")
    _require_changeable(task)
    conventional, dl = image_pair(task)
    if (conventional.rows, conventional.columns) != (dl.rows, dl.columns):
        raise RoiError("This image cannot be measured.")
    ellipse.check((conventional.rows, conventional.columns), stack(conventional.pk).count())
    conv_mean, conv_sd, conv_n = measure(conventional, ellipse)
    dl_mean, dl_sd, dl_n = measure(dl, ellipse)
    with transaction.atomic():
        roi, _ = RoiMeasurement.objects.update_or_create(
            task=task,
            label=label,
            defaults={
                "study": task.study,
                "case": task.case,
                "sequence": task.sequence,
                "drawn_by": reader,
                "slice_index": ellipse.slice_index,
                "center_row": ellipse.center_row,
                "center_col": ellipse.center_col,
                "radius_rows": ellipse.radius_rows,
                "radius_cols": ellipse.radius_cols,
                "conventional_series": conventional,
                "dl_series": dl,
                "conventional_mean": conv_mean,
                "conventional_sd": conv_sd,
                "conventional_pixels": conv_n,
                "dl_mean": dl_mean,
                "dl_sd": dl_sd,
                "dl_pixels": dl_n,
            },
        )
    return roi


def reader_rois(reader: User, task: ReadingTask):
    """The reader's ROIs of this task only.

    ROIs drawn on the other version's task of the same image are not shown here: seeing them again would tell the
    reader that the two tasks show one image (blinding). Each is measured on both versions all the same.
    """
    return RoiMeasurement.objects.filter(task=task, drawn_by=reader)


def delete_roi(reader: User, task: ReadingTask, label: str) -> bool:
    _require_changeable(task)
    deleted, _ = reader_rois(reader, task).filter(label=label).delete()
    return bool(deleted)
