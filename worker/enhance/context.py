"""The context vector: acquisition parameters and the requested noise-reduction factor, normalised.

The network sees how k-space was sampled (field strength, TR, TE, TI, flip angle, pixel spacing, slice
thickness, matrix, 2D/3D) and how strongly to enhance. Every entry is scaled to roughly ``[0, 2]`` so that
one site's protocol does not dominate the FiLM layers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from .phantom import AcquisitionParams

logger = logging.getLogger(__name__)

CONTEXT_FIELDS = (
    "field_strength",
    "log_tr",
    "te",
    "ti",
    "flip_angle",
    "pixel_spacing",
    "slice_thickness",
    "matrix",
    "is_3d",
    "log_factor",
)
CONTEXT_DIM = len(CONTEXT_FIELDS)
MIN_FACTOR = 1.0
MAX_FACTOR = 100.0
# The factor the shipped model is tuned for; here rather than in `inference` so that web processes can read it
# (the deployment default, READERSTUDY_ENHANCE_FACTOR) without importing torch.
DEFAULT_FACTOR = 16.0


def check_factor(factor: float) -> float:
    """The noise-reduction factor as a float; ``ValueError`` outside ``[1, 100]``."""
    factor = float(factor)
    if not MIN_FACTOR <= factor <= MAX_FACTOR or math.isnan(factor):
        raise ValueError(f"noise-reduction factor must be in [{MIN_FACTOR}, {MAX_FACTOR}], got {factor!r}")
    return factor


def context_from_params(params: AcquisitionParams, matrix: Sequence[int], factor: float) -> np.ndarray:
    """Normalised context vector ``(CONTEXT_DIM,)`` float32 from parameters and the in-plane matrix."""
    factor = check_factor(factor)
    values = (
        params.field_strength / 3.0,
        math.log10(max(params.tr, 1.0)) / 4.0,
        params.te / 100.0,
        params.ti / 2500.0,
        params.flip_angle / 90.0,
        params.pixel_spacing,
        params.slice_thickness / 5.0,
        max(int(m) for m in matrix) / 512.0,
        1.0 if params.is_3d else 0.0,
        math.log(factor) / math.log(MAX_FACTOR),
    )
    return np.asarray(values, dtype=np.float32)


def _number(ds, keyword: str, default: float) -> float:
    """A numeric DICOM attribute, or ``default`` when absent or empty (logged, not fatal)."""
    value = ds.get(keyword)
    if value is None or value == "":
        logger.debug("%s missing, using %s", keyword, default)
        return default
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        logger.warning("%s=%r is not numeric, using %s", keyword, value, default)
        return default


def params_from_dataset(ds) -> tuple[AcquisitionParams, tuple[int, int]]:
    """Acquisition parameters and ``(rows, columns)`` from a pydicom ``Dataset`` (MR image header)."""
    params = AcquisitionParams(
        field_strength=_number(ds, "MagneticFieldStrength", 3.0),
        tr=_number(ds, "RepetitionTime", 500.0),
        te=_number(ds, "EchoTime", 10.0),
        ti=_number(ds, "InversionTime", 0.0),
        flip_angle=_number(ds, "FlipAngle", 90.0),
        pixel_spacing=_number(ds, "PixelSpacing", 1.0),
        slice_thickness=_number(ds, "SliceThickness", 1.0),
        is_3d=str(ds.get("MRAcquisitionType", "2D")).upper() == "3D",
    )
    return params, (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))


def context_from_dataset(ds, factor: float) -> np.ndarray:
    """Normalised context vector ``(CONTEXT_DIM,)`` from a pydicom ``Dataset``."""
    params, matrix = params_from_dataset(ds)
    return context_from_params(params, matrix, factor)
