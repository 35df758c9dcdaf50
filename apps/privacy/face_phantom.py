"""A 3D head series with a face and ears, for measuring defacing: the brain phantom has neither.

``worker.enhance.phantom`` grows skull and scalp from the MNI152 brain mask, so its head is a shell around the brain
with no face. This adds soft tissue where a face and ears are, as ellipsoids placed from MNI landmarks (the phantom's
LPS coordinates are MNI's with x and y negated): a face block in front of and below the frontal lobes (from the
brows to below the mouth), a nose, and an ear on each side beside the temporal lobes. The shapes are crude on
purpose: they are a known face and ear region to count removed voxels in, with the phantom's own brain mask to count
touched ones, not anatomy to train on.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom

from apps.imaging import synthetic
from worker.enhance.phantom import TissueModel, make_tissue_model

# (centre MNI x, y, z), (radii x, y, z) in mm.
FACE_PARTS = (((0.0, 72.0, -60.0), (42.0, 24.0, 36.0)), ((0.0, 97.0, -50.0), (9.0, 12.0, 16.0)))
EAR_PARTS = (((-90.0, -18.0, -32.0), (12.0, 10.0, 26.0)), ((90.0, -18.0, -32.0), (12.0, 10.0, 26.0)))


class FacePhantom(NamedTuple):
    files: list[Path]
    model: TissueModel
    face: np.ndarray  # (Z, Y, X) bool: face voxels (outside the phantom's own head)
    ears: np.ndarray


def _ellipsoids(model: TissueModel, parts) -> np.ndarray:
    nz, ny, nx = model.shape
    dz, dy, dx = model.spacing
    x0, y0, z0 = model.origin_lps
    x = -(x0 + dx * np.arange(nx))[None, None, :]  # MNI x
    y = -(y0 + dy * np.arange(ny))[None, :, None]  # MNI y
    z = (z0 + dz * np.arange(nz))[:, None, None]
    inside = np.zeros(model.shape, bool)
    for (cx, cy, cz), (rx, ry, rz) in parts:
        inside |= ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0
    return inside & ~model.head_mask


def write_face_series(out_dir: Path, patient: synthetic.SyntheticPatient, shape: tuple[int, int, int],
                      seed: int) -> FacePhantom:
    """Writes the patient's 3D T1W post-contrast series (``synthetic.write_study``) with a face and ears added as
    soft tissue as bright as the scalp, with the series' noise; returns the files and the masks on its grid."""
    files = synthetic.write_study(out_dir, patient, seed=seed, sequences=("T1W_POST",), shape_3d=shape)
    model = make_tissue_model(shape, seed=seed + patient.index * 7919 + patient.site_index)
    face, ears = _ellipsoids(model, FACE_PARTS), _ellipsoids(model, EAR_PARTS)
    datasets = [pydicom.dcmread(path) for path in files]
    volume = np.stack([ds.pixel_array for ds in datasets]).astype(np.float64)
    scalp = model.fat > 0.9
    level, spread = float(np.median(volume[scalp])), float(np.std(volume[~model.head_mask]))
    rng = np.random.default_rng(seed)
    added = face | ears
    volume[added] = level + rng.normal(0.0, spread, int(added.sum()))
    stored = np.clip(np.rint(volume), 0, 2 ** int(datasets[0].BitsStored) - 1).astype(np.uint16)
    for ds, path, plane in zip(datasets, files, stored, strict=True):
        ds.PixelData = plane.tobytes()
        ds.save_as(path, enforce_file_format=True)
    return FacePhantom(files, model, face, ears)
