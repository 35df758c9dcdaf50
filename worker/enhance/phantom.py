"""Deterministic brain phantom: MNI152 tissue maps turned into T2W, FLAIR and post-contrast T1W images.

Training data and demo series must come without downloads, so the anatomy comes from the MNI152 2009a
grey/white-matter probability templates and brain mask that ship inside the nilearn wheel. Extra-axial CSF,
skull and scalp are grown from the brain mask; a glioma (necrotic core, enhancing rim, oedema that follows
white matter) is placed from a seed. Images are rendered with closed-form MR signal equations from
literature T1/T2/PD values at 1.5 T and 3 T.

Geometry: volumes are ``(Z, Y, X)`` axial slices in DICOM LPS orientation: columns run to patient left,
rows to posterior, slices from inferior to superior (``ImageOrientationPatient = [1, 0, 0, 0, 1, 0]``).
``TissueModel.origin_lps`` is the centre of voxel ``[0, 0, 0]`` and ``spacing`` is ``(dz, dy, dx)`` in mm.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Literal, NamedTuple

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

Contrast = Literal["T2W", "FLAIR", "T1W_POST"]
CONTRASTS: tuple[Contrast, ...] = ("T2W", "FLAIR", "T1W_POST")

# In-plane field of view and the brain centre the grid is centred on (LPS, mm).
_FOV_MM = 230.0
_BRAIN_CENTRE_LPS = (0.0, 17.0, 5.0)
_SLAB_MM = 150.0
# Extra-axial layers grown outwards from the brain mask (outer edge, mm).
_CSF_SHELL_MM = 2.5
_SKULL_MM = 8.0
_SCALP_MM = 13.0
# MPRAGE-like readout: repetition of the inversion and excitations before the k-space centre.
_MPRAGE_SHOT_MS = 2300.0
_LINES_TO_CENTRE = 64
_GD_R1_PER_MM_S = 4.0
_GD_ENHANCING_MM = 0.4

# (T1 ms, T2 ms, PD) at 1.5 T and 3 T; Stanisz 2005, Gold 2004, Wansapura 1999, typical glioma values.
_RELAXATION: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "gm": ((1100.0, 95.0, 0.80), (1400.0, 100.0, 0.80)),
    "wm": ((720.0, 75.0, 0.69), (870.0, 75.0, 0.69)),
    "csf": ((3800.0, 2000.0, 1.00), (4200.0, 2000.0, 1.00)),
    "fat": ((343.0, 58.0, 0.90), (382.0, 68.0, 0.90)),
    "bone": ((300.0, 1.0, 0.10), (300.0, 1.0, 0.10)),
    "oedema": ((1150.0, 170.0, 0.86), (1500.0, 180.0, 0.86)),
    "necrosis": ((2500.0, 450.0, 0.95), (2800.0, 450.0, 0.95)),
    "enhancing": ((1300.0, 115.0, 0.88), (1700.0, 120.0, 0.88)),
}
TISSUES = tuple(_RELAXATION)
_SCALE = {"T2W": 3000.0, "FLAIR": 5000.0, "T1W_POST": 20000.0}


class TissueModel(NamedTuple):
    """Per-tissue volume fractions ``(Z, Y, X)`` float32 (they sum to at most 1; the rest is air) and masks."""

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    fat: np.ndarray
    bone: np.ndarray
    oedema: np.ndarray
    necrosis: np.ndarray
    enhancing: np.ndarray
    brain_mask: np.ndarray
    head_mask: np.ndarray
    lesion_mask: np.ndarray
    oedema_mask: np.ndarray
    enhancing_mask: np.ndarray
    necrosis_mask: np.ndarray
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    seed: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.gm.shape  # type: ignore[return-value]

    def fractions(self) -> dict[str, np.ndarray]:
        """Fraction maps keyed by tissue name (the keys of the relaxation table)."""
        return {name: getattr(self, name) for name in TISSUES}


class AcquisitionParams(NamedTuple):
    """Acquisition parameters in DICOM units: tesla, ms, degrees, mm."""

    field_strength: float
    tr: float
    te: float
    ti: float
    flip_angle: float
    pixel_spacing: float
    slice_thickness: float
    is_3d: bool


def csf_null_ti(tr: float, field_strength: float) -> float:
    """Inversion time (ms) that nulls CSF for an IR sequence with repetition time ``tr``."""
    t1_csf = _relaxation("csf", field_strength)[0]
    return t1_csf * math.log(2.0 / (1.0 + math.exp(-tr / t1_csf)))


def default_params(contrast: Contrast, field_strength: float = 3.0) -> AcquisitionParams:
    """Typical clinical glioma-protocol parameters for one contrast (axial 2D T2W/FLAIR, 3D T1W post)."""
    if contrast == "T2W":
        return AcquisitionParams(field_strength, 5000.0, 100.0, 0.0, 90.0, 0.45, 5.0, False)
    if contrast == "FLAIR":
        tr = 9000.0
        return AcquisitionParams(
            field_strength, tr, 120.0, float(round(csf_null_ti(tr, field_strength))), 90.0, 0.45, 5.0, False
        )
    if contrast == "T1W_POST":
        ti = 900.0 if field_strength >= 2.0 else 800.0
        return AcquisitionParams(field_strength, 8.0, 3.0, ti, 9.0, 1.0, 1.0, True)
    raise ValueError(f"unknown contrast {contrast!r}; expected one of {CONTRASTS}")


def _relaxation(tissue: str, field_strength: float) -> tuple[float, float, float]:
    """T1, T2, PD interpolated linearly between 1.5 T and 3 T (clamped outside)."""
    low, high = _RELAXATION[tissue]
    w = min(max((field_strength - 1.5) / 1.5, 0.0), 1.0)
    return tuple(a + w * (b - a) for a, b in zip(low, high, strict=True))  # type: ignore[return-value]


def tissue_signal(tissue: str, contrast: Contrast, params: AcquisitionParams) -> float:
    """Noiseless signal of a pure voxel of ``tissue`` relative to M0 (before the scanner scale)."""
    t1, t2, pd = _relaxation(tissue, params.field_strength)
    if contrast == "T1W_POST" and tissue == "enhancing":
        t1 = 1.0 / (1.0 / t1 + _GD_R1_PER_MM_S * _GD_ENHANCING_MM / 1000.0)
    tr, te, ti = params.tr, params.te, params.ti
    if contrast == "T2W":
        return pd * (1.0 - math.exp(-tr / t1)) * math.exp(-te / t2)
    if contrast == "FLAIR":
        return pd * abs(1.0 - 2.0 * math.exp(-ti / t1) + math.exp(-tr / t1)) * math.exp(-te / t2)
    if contrast == "T1W_POST":
        alpha = math.radians(params.flip_angle)
        e1 = math.exp(-tr / t1)
        m_ss = (1.0 - e1) / (1.0 - math.cos(alpha) * e1)
        mz = m_ss
        if ti > 0:
            m_prep = 1.0 - 2.0 * math.exp(-ti / t1) / (1.0 + math.exp(-_MPRAGE_SHOT_MS / t1))
            r1_star = 1.0 / t1 - math.log(math.cos(alpha)) / tr
            mz = m_ss + (m_prep - m_ss) * math.exp(-_LINES_TO_CENTRE * tr * r1_star)
        return pd * abs(mz) * math.sin(alpha) * math.exp(-te / (0.6 * t2))
    raise ValueError(f"unknown contrast {contrast!r}; expected one of {CONTRASTS}")


def random_params(
    contrast: str, rng: np.random.Generator, spacing: tuple[float, float, float]
) -> AcquisitionParams:
    """Parameters around a typical protocol, jittered as between sites and vendors."""
    field = float(rng.choice([1.5, 3.0]))
    base = default_params(contrast, field)  # type: ignore[arg-type]
    tr = base.tr * rng.uniform(0.8, 1.25)
    te = base.te * rng.uniform(0.8, 1.2)
    ti, flip = base.ti, base.flip_angle
    if contrast == "FLAIR":
        ti = csf_null_ti(tr, field) * rng.uniform(0.95, 1.05)
    elif contrast == "T1W_POST":
        ti = 0.0 if rng.uniform() < 0.25 else base.ti * rng.uniform(0.85, 1.2)
        flip = rng.uniform(7.0, 13.0) if ti else rng.uniform(12.0, 20.0)
    return AcquisitionParams(field, tr, te, ti, flip, spacing[1], spacing[0], spacing[0] <= 1.5)


def scaled_signals(contrast: Contrast, params: AcquisitionParams) -> np.ndarray:
    """Signal of a pure voxel of each tissue (in ``TISSUES`` order) in scanner-like units."""
    return np.array([_SCALE[contrast] * tissue_signal(name, contrast, params) for name in TISSUES])


def render_contrast(
    model: TissueModel, contrast: Contrast, params: AcquisitionParams | None = None
) -> np.ndarray:
    """Noiseless magnitude image ``(Z, Y, X)`` float32 in scanner-like units (hundreds to a few thousand)."""
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}; expected one of {CONTRASTS}")
    params = params or default_params(contrast)
    image = np.zeros(model.shape, dtype=np.float32)
    for signal, fraction in zip(scaled_signals(contrast, params), model.fractions().values(), strict=True):
        image += np.float32(signal) * fraction
    return image


@functools.lru_cache(maxsize=1)
def _native_maps() -> dict[str, np.ndarray]:
    """MNI152 maps at 1 mm as ``(z, y, x)`` float32 arrays in RAS index order, plus extra-axial layers."""
    from nilearn import datasets

    logger.info("loading MNI152 templates bundled with nilearn")
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32) > 0.5
    gm = np.where(brain, gm, 0.0)
    wm = np.where(brain, np.minimum(wm, 1.0 - gm), 0.0)
    csf = np.where(brain, 1.0 - gm - wm, 0.0)
    distance = ndimage.distance_transform_edt(~brain).astype(np.float32)
    shell = (distance > 0) & (distance <= _CSF_SHELL_MM)
    skull = (distance > _CSF_SHELL_MM) & (distance <= _SKULL_MM)
    scalp = (distance > _SKULL_MM) & (distance <= _SCALP_MM)
    maps = {
        "gm": gm,
        "wm": wm,
        "csf": np.maximum(csf, shell.astype(np.float32)),
        "bone": skull.astype(np.float32),
        "fat": scalp.astype(np.float32),
    }
    return {k: np.ascontiguousarray(v.transpose(2, 1, 0), dtype=np.float32) for k, v in maps.items()}


@functools.lru_cache(maxsize=2)
def _smoothed_maps(sigma: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """Native maps blurred by the slice/pixel profile, so that coarse grids get partial volumes, not aliasing."""
    maps = _native_maps()
    if max(sigma) < 0.3:
        return maps
    return {k: ndimage.gaussian_filter(v, sigma, mode="constant") for k, v in maps.items()}


def default_spacing(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """``(dz, dy, dx)`` mm: square pixels over a 230 mm FOV, slices covering the brain (at least 1 mm)."""
    nz, _, nx = shape
    dxy = _FOV_MM / nx
    return (max(1.0, _SLAB_MM / nz), dxy, dxy)


def _resample(shape: tuple[int, int, int], spacing: tuple[float, float, float], origin_lps: np.ndarray):
    """Sample the native maps on the LPS grid; native index = RAS mm - native origin (1 mm voxels)."""
    dz, dy, dx = spacing
    sigma = tuple(math.sqrt(max(s * s - 1.0, 0.0)) / 2.355 for s in spacing)
    maps = _smoothed_maps(tuple(round(s, 2) for s in sigma))
    # native (z, y, x) index of target (k, j, i): z = oz + k dz + 72, y = -(oy + j dy) + 134, x = -(ox + i dx) + 98
    matrix = np.diag([dz, -dy, -dx])
    offset = np.array([origin_lps[2] + 72.0, -origin_lps[1] + 134.0, -origin_lps[0] + 98.0])
    return {
        k: ndimage.affine_transform(v, matrix, offset=offset, output_shape=shape, order=1, mode="constant")
        for k, v in maps.items()
    }


def _grid_mm(shape: tuple[int, int, int], spacing, origin_lps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable LPS coordinates (x, y, z) in mm of every voxel centre."""
    nz, ny, nx = shape
    z = origin_lps[2] + spacing[0] * np.arange(nz, dtype=np.float32)[:, None, None]
    y = origin_lps[1] + spacing[1] * np.arange(ny, dtype=np.float32)[None, :, None]
    x = origin_lps[0] + spacing[2] * np.arange(nx, dtype=np.float32)[None, None, :]
    return x, y, z


def _ramp(rho: np.ndarray, edge: float, width: float) -> np.ndarray:
    """1 inside ``rho < edge``, 0 outside, linear over ``width``: a partial-volume edge."""
    return np.clip((edge - rho) / width + 0.5, 0.0, 1.0).astype(np.float32)


class _Lesion(NamedTuple):
    centre: np.ndarray
    radius: float
    necrosis_ratio: float
    oedema_ratio: float
    waves: np.ndarray
    phases: np.ndarray
    amplitudes: np.ndarray


def _draw_lesion(rng: np.random.Generator) -> _Lesion:
    """Glioma geometry in LPS mm: a lobulated sphere in hemispheric white matter."""
    wm = _native_maps()["wm"]
    for _ in range(200):
        centre = np.array(
            [rng.choice([-1.0, 1.0]) * rng.uniform(15, 42), -rng.uniform(-30, 60), rng.uniform(-5, 45)]
        )
        iz, iy, ix = int(centre[2] + 72), int(-centre[1] + 134), int(-centre[0] + 98)
        if wm[iz, iy, ix] > 0.6:
            break
    directions = rng.normal(size=(6, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    waves = directions * (2 * math.pi / rng.uniform(12, 35, size=(6, 1)))
    return _Lesion(
        centre=centre,
        radius=float(rng.uniform(8, 22)),
        necrosis_ratio=float(rng.uniform(0.35, 0.7)),
        oedema_ratio=float(rng.uniform(1.5, 2.4)),
        waves=waves,
        phases=rng.uniform(0, 2 * math.pi, size=6),
        amplitudes=rng.uniform(0.02, 0.06, size=6),
    )


def _lesion_shapes(lesion: _Lesion, shape, spacing, origin_lps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft tumour, necrosis and oedema-extent maps on the grid; defined in mm, so matrix-independent."""
    x, y, z = _grid_mm(shape, spacing, origin_lps)
    cx, cy, cz = lesion.centre
    distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
    wobble = np.zeros(shape, dtype=np.float32)
    for (wx, wy, wz), phase, amp in zip(lesion.waves, lesion.phases, lesion.amplitudes, strict=True):
        wobble += np.float32(amp) * np.cos(wx * x + wy * y + wz * z + phase)
    rho = distance / (lesion.radius * (1.0 + wobble))
    width = max(spacing) / lesion.radius
    tumour = _ramp(rho, 1.0, width)
    necrosis = np.minimum(_ramp(rho, lesion.necrosis_ratio, width), tumour)
    oedema = _ramp(rho / (1.0 + 2.0 * wobble), lesion.oedema_ratio, 2.0 * width)
    return tumour, necrosis, oedema


def make_tissue_model(
    shape: tuple[int, int, int],
    seed: int,
    lesion: bool = True,
    spacing: tuple[float, float, float] | None = None,
) -> TissueModel:
    """Tissue fractions on a ``(Z, Y, X)`` grid centred on the brain; the glioma is drawn from ``seed``.

    ``spacing`` ``(dz, dy, dx)`` mm defaults to :func:`default_spacing`. The same seed gives the same lesion
    (in mm) at every matrix size. Global random state is not touched.
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive ints (Z, Y, X), got {shape!r}")
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in (spacing or default_spacing(shape)))
    if min(spacing) <= 0:
        raise ValueError(f"spacing must be positive, got {spacing!r}")
    extent = np.array([spacing[2] * (shape[2] - 1), spacing[1] * (shape[1] - 1), spacing[0] * (shape[0] - 1)])
    origin_lps = np.array(_BRAIN_CENTRE_LPS) - extent / 2.0
    maps = _resample(shape, spacing, origin_lps)
    gm, wm, csf = maps["gm"], maps["wm"], maps["csf"]
    brain = gm + wm + csf
    zeros = np.zeros(shape, dtype=np.float32)
    oedema, necrosis, enhancing = zeros, zeros, zeros
    if lesion:
        geometry = _draw_lesion(np.random.default_rng(seed))
        tumour, necrotic, extent_oedema = _lesion_shapes(geometry, shape, spacing, origin_lps)
        inside = np.clip(gm + wm + csf, 0.0, 1.0)
        gm, wm, csf = gm * (1 - tumour), wm * (1 - tumour), csf * (1 - tumour)
        spread = extent_oedema * (1 - tumour)
        oedema = spread * (wm + 0.3 * gm)
        wm, gm = wm * (1 - spread), gm * (1 - 0.3 * spread)
        necrosis = necrotic * inside
        enhancing = (tumour - necrotic) * inside
        brain = gm + wm + csf + oedema + necrosis + enhancing
    head = brain + maps["fat"] + maps["bone"]
    tumour_total = necrosis + enhancing
    return TissueModel(
        gm=gm.astype(np.float32),
        wm=wm.astype(np.float32),
        csf=csf.astype(np.float32),
        fat=maps["fat"].astype(np.float32),
        bone=maps["bone"].astype(np.float32),
        oedema=oedema.astype(np.float32),
        necrosis=necrosis.astype(np.float32),
        enhancing=enhancing.astype(np.float32),
        brain_mask=brain > 0.5,
        head_mask=head > 0.5,
        lesion_mask=tumour_total > 0.5,
        oedema_mask=oedema > 0.5,
        enhancing_mask=enhancing > 0.5,
        necrosis_mask=necrosis > 0.5,
        spacing=spacing,  # type: ignore[arg-type]
        origin_lps=tuple(float(v) for v in origin_lps),  # type: ignore[arg-type]
        seed=int(seed),
    )


def noisy_series(
    shape: tuple[int, int, int] = (5, 160, 144),
    spacing: tuple[float, float, float] = (5.0, 1.6, 1.6),
    contrast: Contrast = "T2W",
    noise: float = 0.03,
    seed: int = 0,
) -> tuple[np.ndarray, AcquisitionParams]:
    """A small noisy series ``(Z, Y, X)`` float32 and its acquisition parameters: the phantom rendered in
    ``contrast`` with Rician noise of SD ``noise`` x its 99th percentile. Deterministic for a seed; used to try a
    model before it is registered."""
    model = make_tissue_model(shape, seed, spacing=spacing)
    clean = render_contrast(model, contrast)
    rng = np.random.default_rng(seed)
    sigma = noise * float(np.percentile(clean, 99.0))
    noisy = np.hypot(clean + rng.normal(0.0, sigma, clean.shape), rng.normal(0.0, sigma, clean.shape))
    params = default_params(contrast)._replace(pixel_spacing=spacing[1], slice_thickness=spacing[0])
    return noisy.astype(np.float32), params
