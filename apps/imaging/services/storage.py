"""The image store: where de-identified instances are written, and how they are read back."""

import hashlib
import io

import numpy as np
import pydicom
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from pydicom.dataset import Dataset

from apps.imaging.models import Instance, Series


def image_storage():
    return storages["default"]


def slice_location(ds: Dataset) -> float:
    """Position along the slice normal, so a stack sorts correctly whatever the instance numbers say."""
    try:
        row, col = ds.ImageOrientationPatient[:3], ds.ImageOrientationPatient[3:6]
        normal = (
            row[1] * col[2] - row[2] * col[1],
            row[2] * col[0] - row[0] * col[2],
            row[0] * col[1] - row[1] * col[0],
        )
        return float(sum(float(p) * n for p, n in zip(ds.ImagePositionPatient, normal, strict=True)))
    except (AttributeError, TypeError, ValueError, IndexError):
        return float(getattr(ds, "SliceLocation", None) or getattr(ds, "InstanceNumber", None) or 0)


def encode_dataset(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def store_instance(series: Series, ds: Dataset, written: list[str]) -> Instance:
    """Writes one (already de-identified) instance to the image store and records it; the caller owns the
    transaction and deletes the paths in `written` if it rolls back."""
    payload = encode_dataset(ds)
    sop_uid = str(ds.SOPInstanceUID)
    path = image_storage().save(f"images/{series.case.code}/{series.series_uid}/{sop_uid}.dcm", ContentFile(payload))
    written.append(path)
    return Instance.objects.create(
        series=series,
        sop_uid=sop_uid,
        instance_number=int(ds.InstanceNumber) if ds.get("InstanceNumber") is not None else None,
        slice_location=slice_location(ds),
        file=path,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )


def discard_files(paths: list[str]) -> None:
    """Removes files written by a transaction that did not commit, so no half series stays on disk."""
    storage = image_storage()
    for path in paths:
        storage.delete(path)


def read_dataset(instance: Instance) -> Dataset:
    """Reads a stored instance back (local disk or object storage alike)."""
    with image_storage().open(instance.file.name, "rb") as stream:
        return pydicom.dcmread(stream)


def stored_volume(series: Series) -> np.ndarray:
    """The stored series as a float32 volume ``(Z, Y, X)`` in real-world units, slices in position order."""
    slices = []
    for instance in series.instances.order_by("slice_location", "instance_number"):
        ds = read_dataset(instance)
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        slices.append(ds.pixel_array.astype(np.float32) * np.float32(slope) + np.float32(intercept))
    return np.stack(slices)
