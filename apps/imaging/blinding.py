"""The blinding filter: every image a reader receives is rebuilt from scratch by `blind`.

Nothing is copied from the stored header except pixel values and geometry, so neither site, patient, scanner,
software nor the conventional/DL origin can travel with it. Both versions of an image come out with the same
tags, the same value lengths for the same geometry, the same pixel format (signed 16-bit, identity rescale) and
the same transfer syntax, so their byte sizes are equal for equal matrices. UIDs are derived from the opaque
image token, so they are new per task and look alike for both versions. Pure: no Django, no I/O.
"""

import hashlib
from collections.abc import Iterable
from io import BytesIO

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.pixels import pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

IMPLEMENTATION_CLASS_UID = UID("1.2.826.0.1.3680043.8.498.90210")
INT16 = np.iinfo(np.int16)
WINDOW_PERCENTILES = (0.5, 99.5)


def token_uid(token: str, role: str) -> UID:
    """A 2.25 UID (a UUID as a decimal) from a token and a role; always 43 characters long."""
    digest = int.from_bytes(hashlib.sha256(f"{role}:{token}".encode()).digest()[:16], "big")
    return UID(f"2.25.{10**37 + digest % (9 * 10**37)}")


def modality_pixels(source: Dataset) -> np.ndarray:
    """Pixel values in modality units, rounded and clipped to signed 16 bits, MONOCHROME2.

    Decodes without caching the array on the dataset, so a series held in memory at ingest is not doubled.
    """
    stored = pixel_array(source)
    slope = float(getattr(source, "RescaleSlope", 1) or 1)
    intercept = float(getattr(source, "RescaleIntercept", 0) or 0)
    monochrome1 = getattr(source, "PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1"
    if slope == 1 and intercept == 0 and not monochrome1 and stored.dtype.kind in "iu" and stored.itemsize <= 2:
        # The common case, without a float round trip: only values beyond int16 need clipping.
        if stored.dtype == np.uint16 and stored.size and stored.max() > INT16.max:
            stored = np.minimum(stored, INT16.max)
        return stored.astype("<i2")
    values = stored.astype(np.float64) * slope + intercept
    if monochrome1:
        values = values.max() - values
    return np.clip(np.rint(values), INT16.min, INT16.max).astype("<i2")


def volume_window(slices: Iterable[np.ndarray], step: int = 4) -> tuple[float, float]:
    """Window centre and width from robust percentiles of a whole volume (sub-sampled), computed the same way
    for both versions so the display settings follow the pixels only."""
    sample = np.concatenate([np.asarray(s)[::step, ::step].ravel() for s in slices])
    if sample.size == 0:
        raise ValueError("An empty volume has no window.")
    low, high = np.percentile(sample, WINDOW_PERCENTILES)
    width = max(float(high - low), 1.0)
    return float(low) + width / 2, width


def display_window(datasets: Iterable[Dataset]) -> tuple[float, float]:
    """The display window of a series from its instances: the one function used when any series is stored
    (upload, vendor upload, DL output), so both versions of an image get their window the same way."""
    return volume_window(modality_pixels(ds) for ds in datasets)


def _ds(value: float) -> str:
    """A decimal string with six decimals: equal geometry gives equal strings, whatever wrote the source."""
    return f"{value:.6f}"


def _ds_fixed(value: float) -> str:
    """A decimal string of constant length (13 characters) for values that differ between versions."""
    return f"{value:+.6e}"


def blind(
    source: Dataset, image_token: str, slice_index: int, window: tuple[float, float] | None = None
) -> Dataset:
    """A new minimal MR dataset for one slice: pixel data, geometry and display tags, fresh UIDs.

    `slice_index` (0-based, in stack order) becomes InstanceNumber slice_index + 1.
    """
    pixels = modality_pixels(source)
    if pixels.ndim != 2:
        raise ValueError("Only single-frame greyscale images can be served.")
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = token_uid(image_token, f"sop:{slice_index}")
    ds.StudyInstanceUID = token_uid(image_token, "study")
    ds.SeriesInstanceUID = token_uid(image_token, "series")
    ds.FrameOfReferenceUID = token_uid(image_token, "frame")
    ds.Modality = "MR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = slice_index + 1
    if "ImagePositionPatient" in source:
        ds.ImagePositionPatient = [_ds(float(v)) for v in source.ImagePositionPatient]
    if "ImageOrientationPatient" in source:
        ds.ImageOrientationPatient = [_ds(float(v)) for v in source.ImageOrientationPatient]
    if "PixelSpacing" in source:
        ds.PixelSpacing = [_ds(float(v)) for v in source.PixelSpacing]
    if "SliceThickness" in source and source.SliceThickness not in (None, ""):
        ds.SliceThickness = _ds(float(source.SliceThickness))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    if window is not None:
        ds.WindowCenter = _ds_fixed(window[0])
        ds.WindowWidth = _ds_fixed(window[1])
    ds.PixelData = pixels.tobytes()

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    ds.file_meta.ImplementationVersionName = "RS"
    return ds


def encode(ds: Dataset) -> bytes:
    """Part 10 bytes, uncompressed explicit VR little endian."""
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
