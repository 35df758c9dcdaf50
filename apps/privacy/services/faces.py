"""Faces and ears cut from 3D head series at upload, for the sites that ask for it (``Institution.deface_3d_head``),
and the same cut on every DL version of such a series, so readers cannot tell the versions apart by it.

The cut (``apps.privacy.defacing``) is computed once, on the conventional series as uploaded, applied to its pixels
before they are stored, and kept as a voxel mask with the series; the enhancement worker puts the conventional
series' values back wherever the mask says, after the model ran on the defaced images.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array

from apps.imaging.services.storage import slice_location
from apps.privacy import defacing
from apps.privacy.models import SeriesDefacing

HEAD_BODY_PARTS = frozenset({"", "HEAD", "BRAIN", "SKULL", "HEADNECK"})
DEFACE_FAILED = "deface_failed"


def is_3d_head(ds: Dataset) -> bool:
    """A 3D acquisition of the head (the product reads brain MRI, so an unnamed body part counts as head)."""
    body_part = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    return str(ds.get("MRAcquisitionType", "") or "").strip().upper() == "3D" and body_part in HEAD_BODY_PARTS


def deface_datasets(datasets: list[Dataset]) -> defacing.Defacing:
    """Cuts face and ears from the pixels of one 3D series in place; the mask's slices run along the normal.

    Raises ``defacing.DefacingError`` when the series is no head the rule can handle (then nothing is changed).
    """
    ordered = sorted(datasets, key=slice_location)
    stored = np.stack([pixel_array(ds) for ds in ordered])
    first = ordered[0]
    coords = defacing.voxel_coordinates(
        np.array([[float(v) for v in ds.ImagePositionPatient] for ds in ordered]),
        np.array([float(v) for v in first.ImageOrientationPatient]),
        (float(first.PixelSpacing[0]), float(first.PixelSpacing[1])), stored.shape,
    )
    result = defacing.deface(stored.astype(np.float32), coords)
    cut = defacing.apply(stored, result.mask)
    for ds, plane in zip(ordered, cut, strict=True):
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()
        ds.PixelData = np.ascontiguousarray(plane, dtype=stored.dtype).tobytes()
    return result


def record(series, result: defacing.Defacing) -> SeriesDefacing:
    """Keeps the cut with the conventional series (the mask, not a pixel value)."""
    return SeriesDefacing.objects.create(
        series=series, method=defacing.METHOD, shape=list(result.mask.shape), mask=defacing.pack(result.mask),
        removed_voxels=int(result.mask.sum()), face_plane=[round(v, 4) for v in result.face_plane],
        ear_planes=[round(v, 2) for v in result.ear_planes], seconds=round(result.seconds, 3),
    )


def same_cut(series, conventional: np.ndarray, enhanced: np.ndarray) -> np.ndarray:
    """A DL volume of ``series`` with the conventional (defaced) values wherever the series' cut removed voxels;
    unchanged when the series was not defaced. Volumes ``(Z, Y, X)`` sorted along the slice normal."""
    recorded = SeriesDefacing.objects.filter(series=series).first()
    if recorded is None:
        return enhanced
    shape = tuple(recorded.shape)
    if enhanced.shape != shape or conventional.shape != shape:
        raise ValueError(f"The DL volume {enhanced.shape} does not match the defaced series' mask {shape}.")
    mask = defacing.unpack(recorded.mask, shape)
    return np.where(mask, conventional, enhanced).astype(enhanced.dtype)
