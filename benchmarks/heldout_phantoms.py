"""A second, procedural head-phantom family that training never draws from, to judge generalisation.

Every model in this project is trained on ``worker/enhance/phantom.py``: one MNI152 anatomy with a lobulated
glioma. A model can score well there by learning that template. This family shares none of its anatomy:
the head is built from mm-space shapes drawn from a seed -- scalp (skin, fat), a skull with diploic marrow,
subarachnoid CSF, a cerebrum/temporal-lobe/cerebellum/brainstem union whose cortical ribbon is folded by
band-limited 3D noise (sulci are its zero sheets), an interhemispheric fissure, white matter, lateral and
third ventricles, caudate/putamen/thalamus, a dural sinus and cortical vessels (flow voids on spin echo,
enhancing on post-contrast T1W), a coil bias field, and a glioma of random shape (necrotic core, enhancing
rim of varying thickness, oedema that fingers along white matter). Tissues get their own T1/T2/PD table
(Wansapura 1999, Gold 2004, Stanisz 2005-like values, deliberately not phantom.py's) and their own signal
equations (FSE, FLAIR, MPRAGE-like with a different shot), so no path leads through the training anatomy or
relaxation table; only ``AcquisitionParams``/``default_params`` (the protocol a scanner would report) are shared.

Geometry follows phantom.py's conventions: ``(Z, Y, X)`` axial slices, LPS (x to patient left, y posterior,
z superior), ``spacing = (dz, dy, dx)`` mm. Thick slices are integrated from 1 mm sub-slices (slice profile,
partial volume). The anatomy is defined in mm, so one seed gives the same head on every grid.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from worker.enhance.phantom import AcquisitionParams, Contrast, default_params

HELDOUT_SEED_OFFSET = 5_000_000
# 2D T2W/FLAIR (30 x 5 mm, 256^2 over 230 mm) and 3D T1W post (1 mm); (shape, spacing) per contrast.
GEOMETRY_2D = ((30, 256, 256), (5.0, 0.9, 0.9))
GEOMETRY_3D = ((150, 256, 256), (1.0, 0.9, 0.9))
GEOMETRY: dict[str, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    "T2W": GEOMETRY_2D,
    "FLAIR": GEOMETRY_2D,
    "T1W_POST": GEOMETRY_3D,
}
# Centre of the default axial coverage (mm, LPS): the vertex is in, the lowest slices cut the cerebellum.
_COVERAGE_CENTRE_Z = 10.0

# (T1 ms, T2 ms, PD) at 1.5 T and 3 T. Blood: flow void on spin echo, Gd-enhanced on post-contrast T1W.
RELAXATION: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "gm": ((1190.0, 102.0, 0.83), (1331.0, 110.0, 0.83)),
    "wm": ((660.0, 72.0, 0.70), (832.0, 80.0, 0.70)),
    "deep_gm": ((950.0, 85.0, 0.78), (1180.0, 78.0, 0.78)),
    "csf": ((4300.0, 2200.0, 1.00), (4400.0, 1800.0, 1.00)),
    "fat": ((290.0, 165.0, 0.90), (370.0, 135.0, 0.90)),
    "marrow": ((380.0, 120.0, 0.75), (450.0, 100.0, 0.75)),
    "bone": ((250.0, 0.6, 0.05), (250.0, 0.6, 0.05)),
    "skin": ((1000.0, 45.0, 0.75), (1400.0, 42.0, 0.75)),
    "blood": ((1350.0, 220.0, 0.85), (1650.0, 150.0, 0.85)),
    "oedema": ((1250.0, 190.0, 0.88), (1600.0, 200.0, 0.88)),
    "necrosis": ((2400.0, 500.0, 0.95), (2900.0, 520.0, 0.95)),
    "enhancing": ((1350.0, 110.0, 0.88), (1750.0, 125.0, 0.88)),
}
HELDOUT_TISSUES = tuple(RELAXATION)
_SCALE = {"T2W": 2600.0, "FLAIR": 4600.0, "T1W_POST": 21000.0}
_GD_R1_PER_MM_S = 4.5
_BLOOD_GD_MM = 0.8
_FLOW_VOID = 0.05
_MPRAGE_SHOT_MS = 2000.0
_MPRAGE_LINES_TO_CENTRE = 80
_BRAIN_TISSUES = ("gm", "wm", "deep_gm", "csf")

# Noise lattices cover the head (mm, LPS): (min, max) per axis x, y, z.
_BOX = ((-100.0, 100.0), (-125.0, 125.0), (-95.0, 110.0))


class _Field:
    """Smooth random field on a mm lattice, sampled anywhere by linear interpolation (unit SD)."""

    def __init__(self, rng: np.random.Generator, step: float, sigmas_mm: tuple[float, ...]) -> None:
        self.step = step
        shape = tuple(int(math.ceil((hi - lo) / step)) + 1 for lo, hi in _BOX)
        white = rng.standard_normal(shape, dtype=np.float32)
        field = ndimage.gaussian_filter(white, sigmas_mm[0] / step, mode="wrap")
        if len(sigmas_mm) > 1:  # difference of Gaussians: band-limited, no slow drift
            field -= ndimage.gaussian_filter(white, sigmas_mm[1] / step, mode="wrap")
        self.values = (field / field.std()).astype(np.float32)

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        index = np.stack([(v - lo) / self.step for v, (lo, _) in zip((x, y, z), _BOX, strict=True)])
        return ndimage.map_coordinates(self.values, index, order=1, mode="nearest")

    def to_zero_sheet(self) -> None:
        """Replace the values by ``|f| / |grad f|``: about the distance (mm) to the nearest zero sheet of f."""
        gradient = np.sqrt(sum(g * g for g in np.gradient(self.values, self.step)))
        self.values = (np.abs(self.values) / np.maximum(gradient, 0.05)).astype(np.float32)


class _Ellipsoid(NamedTuple):
    centre: tuple[float, float, float]
    axes: tuple[float, float, float]


class _Capsule(NamedTuple):
    """A tapered tube from ``a`` to ``b`` (mm) with radii ``ra`` -> ``rb``; ``squash`` scales x, y, z first."""

    a: tuple[float, float, float]
    b: tuple[float, float, float]
    ra: float
    rb: float
    squash: tuple[float, float, float] = (1.0, 1.0, 1.0)


class Anatomy(NamedTuple):
    """Everything drawn from a seed, in mm; rendering it on any grid is deterministic."""

    seed: int
    brain: tuple[_Ellipsoid, ...]
    brainstem: _Capsule
    layers_mm: tuple[float, ...]  # CSF, inner table, diploe, outer table, fat, skin thickness
    sulcal_depth: float
    sulcal_half_width: float
    cortex_mm: float
    ventricles: tuple[_Capsule, ...]
    nuclei: tuple[_Ellipsoid, ...]
    caudate: tuple[_Capsule, ...]
    vessels: tuple[_Capsule, ...]
    lesion_centre: tuple[float, float, float]
    lesion_radius: float
    core_ratio: float
    oedema_ratio: float
    lobulation: float
    enhancing_gd_mm: float
    fields: dict[str, _Field]


class HeldoutHead(NamedTuple):
    """Tissue fractions (sum <= 1, rest air), a bias field, label masks and metric ROIs on one grid."""

    fractions: dict[str, np.ndarray]
    bias: np.ndarray
    masks: dict[str, np.ndarray]
    spacing: tuple[float, float, float]
    origin_lps: tuple[float, float, float]
    anatomy: Anatomy

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.bias.shape  # type: ignore[return-value]


def _mirror(capsule: _Capsule) -> _Capsule:
    """The same structure in the other hemisphere."""
    (ax, ay, az), (bx, by, bz) = capsule.a, capsule.b
    return capsule._replace(a=(-ax, ay, az), b=(-bx, by, bz))


@functools.lru_cache(maxsize=4)
def draw_anatomy(seed: int) -> Anatomy:
    """Head shape, folding, deep structures, vessels and glioma from ``seed`` (global random state untouched)."""
    rng = np.random.default_rng([seed, 9_131])
    size = rng.uniform(0.92, 1.06)
    ax, ay, az = 66.0 * size * rng.uniform(0.95, 1.05), 84.0 * size, 62.0 * size * rng.uniform(0.95, 1.05)
    cerebrum = _Ellipsoid((0.0, rng.uniform(-3, 3), 14.0), (ax, ay, az))
    temporal = tuple(
        _Ellipsoid((side * 0.56 * ax, -0.12 * ay, -14.0), (0.36 * ax, 0.45 * ay, 0.36 * az))
        for side in (-1, 1)
    )
    cerebellum = _Ellipsoid((0.0, 0.55 * ay, -30.0), (0.72 * ax, 0.36 * ay, 0.36 * az))
    brainstem = _Capsule((0.0, 0.12 * ay, -80.0), (0.0, 0.05 * ay, -5.0), 11.0, 13.0)
    atrophy = rng.uniform(0.0, 1.0)
    layers = (
        1.5 + 2.0 * atrophy,
        rng.uniform(1.2, 1.8),
        rng.uniform(2.0, 4.5),
        rng.uniform(1.2, 1.8),
        rng.uniform(3.0, 6.0),
        rng.uniform(1.2, 2.0),
    )
    vent = rng.uniform(0.8, 1.2) + 0.5 * atrophy
    left = (
        _Capsule((10.0, -30.0, 20.0), (12.0, -5.0, 24.0), 4.5 * vent, 4.0 * vent, (1.0, 1.0, 1.5)),
        _Capsule((12.0, -5.0, 24.0), (22.0, 25.0, 17.0), 4.0 * vent, 5.5 * vent, (1.0, 1.0, 1.5)),
        _Capsule((22.0, 25.0, 17.0), (17.0, 45.0, 12.0), 5.5 * vent, 2.0 * vent),
        _Capsule((22.0, 25.0, 17.0), (31.0, 12.0, -4.0), 4.0 * vent, 2.0 * vent),
        _Capsule((31.0, 12.0, -4.0), (32.0, -12.0, -14.0), 2.0 * vent, 1.5 * vent),
    )
    third = _Capsule((0.0, -8.0, 6.0), (0.0, 14.0, 6.0), 3.0 * vent, 3.0 * vent, (3.0, 1.0, 0.5))
    ventricles = (*left, *(_mirror(c) for c in left), third)
    nuclei = tuple(
        _Ellipsoid((side * x, y, z), axes)
        for side in (-1, 1)
        for (x, y, z), axes in (((27.0, -4.0, 4.0), (6.0, 15.0, 10.0)), ((11.0, 12.0, 7.0), (8.0, 14.0, 9.0)))
    )
    caudate_left = _Capsule((16.0, -28.0, 16.0), (19.0, -6.0, 22.0), 5.5, 3.0)
    caudate = (caudate_left, _mirror(caudate_left))
    vessels = _vessels(rng, cerebrum)
    fields = {
        "sulcus": _Field(np.random.default_rng([seed, 1]), 1.5, (3.0, 6.5)),
        "shape": _Field(np.random.default_rng([seed, 2]), 4.0, (18.0,)),
        "midline": _Field(np.random.default_rng([seed, 3]), 4.0, (14.0,)),
        "lesion": _Field(np.random.default_rng([seed, 4]), 2.0, (4.5,)),
        "oedema": _Field(np.random.default_rng([seed, 5]), 2.0, (6.0,)),
        "bias": _Field(np.random.default_rng([seed, 6]), 5.0, (45.0,)),
    }
    fields["sulcus"].to_zero_sheet()
    centre, radius = _lesion_site(rng, cerebrum, ventricles)
    return Anatomy(
        seed=int(seed),
        brain=(cerebrum, *temporal, cerebellum),
        brainstem=brainstem,
        layers_mm=layers,
        sulcal_depth=rng.uniform(18.0, 26.0),
        sulcal_half_width=0.5 + 0.6 * atrophy,
        cortex_mm=rng.uniform(2.5, 3.2),
        ventricles=ventricles,
        nuclei=nuclei,
        caudate=caudate,
        vessels=vessels,
        lesion_centre=centre,
        lesion_radius=radius,
        core_ratio=rng.uniform(0.3, 0.7),
        oedema_ratio=rng.uniform(1.3, 2.0),
        lobulation=rng.uniform(0.12, 0.3),
        enhancing_gd_mm=rng.uniform(0.3, 0.7),
        fields=fields,
    )


def _surface_point(cerebrum: _Ellipsoid, direction: np.ndarray, offset_mm: float) -> tuple[float, ...]:
    """Point ``offset_mm`` outside the cerebrum ellipsoid along ``direction`` from its centre."""
    direction = direction / np.linalg.norm(direction)
    radius = 1.0 / math.sqrt(sum((d / a) ** 2 for d, a in zip(direction, cerebrum.axes, strict=True)))
    return tuple(float(c + d * (radius + offset_mm)) for c, d in zip(cerebrum.centre, direction, strict=True))


def _vessels(rng: np.random.Generator, cerebrum: _Ellipsoid) -> tuple[_Capsule, ...]:
    """Superior sagittal sinus, both middle cerebral arteries and a few random cortical veins."""
    angles = np.linspace(0.25, math.pi - 0.15, 9)
    sinus = [_surface_point(cerebrum, np.array([0.0, -math.cos(t), math.sin(t)]), 3.0) for t in angles]
    tubes = [_Capsule(a, b, 3.0, 3.0) for a, b in zip(sinus[:-1], sinus[1:], strict=True)]
    for side in (-1.0, 1.0):
        tubes.append(_Capsule((side * 8.0, -6.0, -12.0), (side * 40.0, -2.0, -10.0), 1.6, 1.3))
        tubes.append(_Capsule((side * 40.0, -2.0, -10.0), (side * 55.0, 12.0, 10.0), 1.3, 1.0))
    for _ in range(int(rng.integers(3, 6))):
        direction = rng.normal(size=3) * np.array([1.0, 1.0, 0.5]) + np.array([0.0, 0.0, 0.6])
        points = [
            _surface_point(cerebrum, direction + step * rng.normal(size=3), 0.5) for step in (0, 0.3, 0.6)
        ]
        radius = float(rng.uniform(0.8, 1.4))
        tubes += [_Capsule(a, b, radius, radius) for a, b in zip(points[:-1], points[1:], strict=True)]
    return tuple(tubes)


def _lesion_site(
    rng: np.random.Generator, cerebrum: _Ellipsoid, ventricles: tuple[_Capsule, ...]
) -> tuple[tuple[float, float, float], float]:
    """Glioma centre in hemispheric white matter, clear of the ventricles and the midline, and its radius."""
    radius = float(rng.uniform(9.0, 22.0))
    for _ in range(200):
        relative = rng.uniform(-1, 1, size=3) * np.array([0.55, 0.6, 0.5])
        centre = np.array(cerebrum.centre) + relative * np.array(cerebrum.axes)
        point = [np.array([v], dtype=np.float32) for v in centre]
        clear = min(float(_capsule_distance(c, *point)[0]) for c in ventricles)
        if abs(centre[0]) > 18.0 and clear > 0.6 * radius and np.linalg.norm(relative) > 0.25:
            break
    return (float(centre[0]), float(centre[1]), float(centre[2])), radius


def _ellipsoid_distance(e: _Ellipsoid, x: np.ndarray, y: np.ndarray, z: np.ndarray, scale=1.0) -> np.ndarray:
    """Signed distance (mm, outside > 0) along the ray from the centre, for a radially scaled ellipsoid."""
    dx, dy, dz = x - e.centre[0], y - e.centre[1], z - e.centre[2]
    rho = np.sqrt((dx / e.axes[0]) ** 2 + (dy / e.axes[1]) ** 2 + (dz / e.axes[2]) ** 2) / scale
    length = np.sqrt(dx * dx + dy * dy + dz * dz)
    return length * (1.0 - 1.0 / np.maximum(rho, 1e-3))


def _capsule_distance(c: _Capsule, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Signed distance (mm, outside > 0) to a tapered tube, in the squashed frame."""
    sx, sy, sz = c.squash
    a = np.array(c.a) * c.squash
    ab = np.array(c.b) * c.squash - a
    px, py, pz = x * sx - a[0], y * sy - a[1], z * sz - a[2]
    t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / float(ab @ ab), 0.0, 1.0)
    gap = np.sqrt((px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (pz - t * ab[2]) ** 2)
    return gap - (c.ra + t * (c.rb - c.ra))


def _ramp(distance: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume occupancy: 1 well inside (distance < 0), 0 well outside, linear across ``width``."""
    return np.clip(0.5 - distance / width, 0.0, 1.0).astype(np.float32)


def _paint(
    fractions: dict[str, np.ndarray], tissue: str, alpha: np.ndarray, within: dict[str, float]
) -> None:
    """Replace ``alpha * weight`` of each ``within`` tissue by ``tissue`` (fractions keep their sum)."""
    for source, weight in within.items():
        taken = fractions[source] * np.clip(alpha * weight, 0.0, 1.0)
        fractions[source] -= taken
        fractions[tissue] += taken


def _tubes(capsules: tuple[_Capsule, ...], x: np.ndarray, y: np.ndarray, z: np.ndarray, reach: float):
    """Occupancy of a union of tubes; each tube is evaluated only inside its bounding box (speed)."""
    distance = np.full(x.shape, np.inf, dtype=np.float32)
    for c in capsules:
        pad = max(c.ra, c.rb) / min(c.squash) + reach
        near = np.ones(x.shape, dtype=bool)
        for v, a, b in zip((x, y, z), c.a, c.b, strict=True):
            near &= (v > min(a, b) - pad) & (v < max(a, b) + pad)
        if near.any():
            distance[near] = np.minimum(distance[near], _capsule_distance(c, x[near], y[near], z[near]))
    return _ramp(distance, reach)


def _fractions_at(anatomy: Anatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray, width: float):
    """Tissue fractions at points (flat arrays, mm); ``width`` is the partial-volume edge width."""
    f = anatomy.fields
    fractions = {t: np.zeros(x.shape, dtype=np.float32) for t in HELDOUT_TISSUES}
    shape = f["shape"](x, y, z)
    brain_d = np.minimum.reduce(
        [_ellipsoid_distance(e, x, y, z, 1.0 + 0.035 * shape) for e in anatomy.brain]
        + [_capsule_distance(anatomy.brainstem, x, y, z)]
    )
    # Extra-axial shells, outward from the brain surface; the diploe thickens and thins with the shape field.
    in_head = brain_d < sum(anatomy.layers_mm) * 1.3 + width
    shells = {
        t: np.zeros(int(in_head.sum()), dtype=np.float32) for t in ("csf", "bone", "marrow", "fat", "skin")
    }
    head_d, head_shape = brain_d[in_head], shape[in_head]
    inner = _ramp(head_d, width)
    edge = 0.0
    for tissue, thickness in zip(
        ("csf", "bone", "marrow", "bone", "fat", "skin"), anatomy.layers_mm, strict=True
    ):
        edge = edge + (thickness * (1.0 + 0.3 * head_shape) if tissue == "marrow" else thickness)
        outer = _ramp(head_d - edge, width)
        shells[tissue] += outer - inner
        inner = outer
    for tissue, values in shells.items():
        fractions[tissue][in_head] = values
    inside = np.flatnonzero(brain_d < width)
    brain = {t: v[inside] for t, v in fractions.items()}
    _brain_fractions(anatomy, brain, x[inside], y[inside], z[inside], brain_d[inside], shape[inside], width)
    for tissue, values in brain.items():
        fractions[tissue][inside] = values
    return fractions


def _brain_fractions(
    anatomy: Anatomy, fractions: dict[str, np.ndarray], x, y, z, brain_d, shape, width
) -> None:
    """Add parenchyma, deep structures, lesion and vessels to the fractions of points in or near the brain."""
    # Cortex folded along the zero sheets of the band-limited fold field, sulci stopping at a random depth.
    depth = -brain_d
    sulcus = anatomy.fields["sulcus"](x, y, z)
    sulcus += 3.0 * np.maximum(depth - anatomy.sulcal_depth * (1.0 + 0.3 * shape), 0.0)
    fissure = np.abs(x - 2.5 * anatomy.fields["midline"](x, y, z))
    core = np.minimum(38.0 - np.abs(y - 5.0), 24.0 - z)  # callosum and diencephalon: no fissure
    fissure += 3.0 * np.maximum(core, 0.0) + 3.0 * np.maximum(-12.0 - z, 0.0)
    to_csf = np.minimum(np.minimum(depth, sulcus), fissure) - anatomy.sulcal_half_width
    brain = _ramp(brain_d, width)
    parenchyma = brain * (1.0 - _ramp(to_csf, width))
    fractions["csf"] += brain - parenchyma
    wm = parenchyma * (1.0 - _ramp(to_csf - anatomy.cortex_mm, width))
    fractions["wm"] += wm
    fractions["gm"] += parenchyma - wm
    deep = np.maximum.reduce(
        [_ramp(_ellipsoid_distance(e, x, y, z), width) for e in anatomy.nuclei]
        + [_tubes(anatomy.caudate, x, y, z, width)]
    )
    _paint(fractions, "deep_gm", deep, {"wm": 1.0, "gm": 1.0})
    _paint(
        fractions, "csf", _tubes(anatomy.ventricles, x, y, z, width), {"wm": 1.0, "gm": 1.0, "deep_gm": 1.0}
    )
    cx, cy, cz = anatomy.lesion_centre
    reach = anatomy.oedema_ratio * anatomy.lesion_radius * 2.0 + width
    near = (np.abs(x - cx) < reach) & (np.abs(y - cy) < reach) & (np.abs(z - cz) < reach)
    if near.any():
        lesion = {t: v[near] for t, v in fractions.items()}
        _paint_lesion(anatomy, lesion, x[near], y[near], z[near], width)
        for tissue, values in lesion.items():
            fractions[tissue][near] = values
    vessels = _tubes(anatomy.vessels, x, y, z, width)
    _paint(fractions, "blood", vessels, {t: 1.0 for t in (*_BRAIN_TISSUES, "oedema", "bone", "marrow")})


def _paint_lesion(anatomy: Anatomy, fractions: dict[str, np.ndarray], x, y, z, width: float) -> None:
    """Oedema along white matter, then the necrotic core and enhancing rim replacing everything in the brain."""
    cx, cy, cz = anatomy.lesion_centre
    distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
    fields = anatomy.fields
    lobes = anatomy.lesion_radius * (1.0 + anatomy.lobulation * fields["lesion"](x, y, z))
    spread = fields["oedema"](x, y, z)
    oedema = _ramp(
        distance - anatomy.oedema_ratio * anatomy.lesion_radius * (1.0 + 0.25 * spread), 2.0 * width
    )
    _paint(fractions, "oedema", oedema, {"wm": 1.0, "gm": 0.25, "deep_gm": 0.5})
    within = {t: 1.0 for t in (*_BRAIN_TISSUES, "oedema")}
    tumour = _ramp(distance - lobes, width)
    core = _ramp(distance - lobes * np.clip(anatomy.core_ratio - 0.15 * spread, 0.15, 0.85), width)
    _paint(fractions, "necrosis", core, within)
    _paint(fractions, "enhancing", (tumour - core) / np.maximum(1.0 - core, 1e-6), within)


def default_origin(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], centre_z: float | None = None
) -> tuple[float, float, float]:
    """LPS origin of voxel ``[0, 0, 0]`` that centres the grid in-plane and on ``centre_z`` (mm)."""
    nz, ny, nx = shape
    dz, dy, dx = spacing
    z = _COVERAGE_CENTRE_Z if centre_z is None else centre_z
    return (-dx * (nx - 1) / 2.0, -dy * (ny - 1) / 2.0, z - dz * (nz - 1) / 2.0)


def make_heldout_head(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    seed: int,
    centre_z: float | None = None,
) -> HeldoutHead:
    """Fractions, bias field and masks of the seed's head on a ``(Z, Y, X)`` grid centred on ``centre_z`` mm."""
    anatomy = draw_anatomy(int(seed))
    origin = default_origin(shape, spacing, centre_z)
    nz, ny, nx = shape
    dz, dy, dx = spacing
    sub = max(1, math.ceil(dz - 1e-6))  # sub-slices of at most 1 mm integrate the slice profile
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    width = max(dx, dy, dz / sub)
    yy, xx = np.meshgrid(origin[1] + dy * np.arange(ny), origin[0] + dx * np.arange(nx), indexing="ij")
    fractions = {t: np.zeros(shape, dtype=np.float32) for t in HELDOUT_TISSUES}
    bias = np.empty(shape, dtype=np.float32)
    for k in range(nz):
        zc = origin[2] + dz * k
        z = np.repeat(zc + dz * offsets, ny * nx).astype(np.float32)
        x, y = np.tile(xx.ravel(), sub).astype(np.float32), np.tile(yy.ravel(), sub).astype(np.float32)
        for tissue, values in _fractions_at(anatomy, x, y, z, width).items():
            fractions[tissue][k] = values.reshape(sub, ny, nx).mean(axis=0)
        bias[k] = (1.0 + 0.07 * anatomy.fields["bias"](xx.ravel(), yy.ravel(), np.full(ny * nx, zc))).reshape(
            ny, nx
        )
    return HeldoutHead(fractions, bias, _masks(fractions, spacing), spacing, origin, anatomy)


def _masks(fractions: dict[str, np.ndarray], spacing: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """Label masks (fraction > 0.5) and metric ROIs: nearly pure GM/WM a pixel off edges, air away from the head."""
    head = sum(fractions.values()) > 0.5
    brain = sum(fractions[t] for t in (*_BRAIN_TISSUES, "oedema", "necrosis", "enhancing", "blood")) > 0.5
    margin = max(1, round(6.0 / spacing[2]))
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    air = ~ndimage.binary_dilation(head, in_plane, iterations=margin)
    tumour = fractions["necrosis"] + fractions["enhancing"]
    return {
        "gm": ndimage.binary_erosion(fractions["gm"] + fractions["deep_gm"] > 0.8, in_plane),
        "wm": ndimage.binary_erosion(fractions["wm"] > 0.9, in_plane),
        "csf": fractions["csf"] > 0.9,
        "lesion": tumour > 0.5,
        "enhancing": fractions["enhancing"] > 0.5,
        "necrosis": fractions["necrosis"] > 0.5,
        "oedema": fractions["oedema"] > 0.5,
        "vessel": fractions["blood"] > 0.5,
        "brain": brain,
        "head": head,
        "air": air,
    }


def heldout_params(contrast: Contrast, field_strength: float, spacing: tuple[float, float, float]):
    """The clinical protocol (``default_params``) on this family's grid."""
    params: AcquisitionParams = default_params(contrast, field_strength)
    return params._replace(pixel_spacing=spacing[1], slice_thickness=spacing[0], is_3d=spacing[0] <= 1.5)


def _relaxation(tissue: str, field_strength: float) -> tuple[float, float, float]:
    """T1, T2, PD interpolated linearly between 1.5 T and 3 T (clamped outside)."""
    low, high = RELAXATION[tissue]
    w = min(max((field_strength - 1.5) / 1.5, 0.0), 1.0)
    return tuple(a + w * (b - a) for a, b in zip(low, high, strict=True))  # type: ignore[return-value]


def signal(tissue: str, contrast: Contrast, params: AcquisitionParams, enhancing_gd_mm: float) -> float:
    """Noiseless pure-tissue signal relative to M0: FSE, IR-FSE (FLAIR) or MPRAGE-like/spoiled GRE."""
    t1, t2, pd = _relaxation(tissue, params.field_strength)
    tr, te, ti = params.tr, params.te, params.ti
    if contrast == "T2W":
        value = pd * (1.0 - math.exp(-tr / t1)) * math.exp(-te / t2)
    elif contrast == "FLAIR":
        value = pd * abs(1.0 - 2.0 * math.exp(-ti / t1) + math.exp(-tr / t1)) * math.exp(-te / t2)
    elif contrast == "T1W_POST":
        gd = {"enhancing": enhancing_gd_mm, "blood": _BLOOD_GD_MM}.get(tissue, 0.0)
        t1 = 1.0 / (1.0 / t1 + _GD_R1_PER_MM_S * gd / 1000.0)
        alpha = math.radians(params.flip_angle)
        e1 = math.exp(-tr / t1)
        mz = (1.0 - e1) / (1.0 - math.cos(alpha) * e1)
        if ti > 0:
            prepared = 1.0 - 2.0 * math.exp(-ti / t1) / (1.0 + math.exp(-_MPRAGE_SHOT_MS / t1))
            r1_eff = 1.0 / t1 - math.log(math.cos(alpha)) / tr
            mz += (prepared - mz) * math.exp(-_MPRAGE_LINES_TO_CENTRE * tr * r1_eff)
        return pd * abs(mz) * math.sin(alpha) * math.exp(-te / (0.7 * t2))
    else:
        raise ValueError(f"unknown contrast {contrast!r}")
    return value * (_FLOW_VOID if tissue == "blood" else 1.0)


def render_heldout(head: HeldoutHead, contrast: Contrast, params: AcquisitionParams) -> np.ndarray:
    """Noiseless magnitude image ``(Z, Y, X)`` float32 in scanner-like units, with the coil bias field."""
    image = np.zeros(head.shape, dtype=np.float32)
    for tissue, fraction in head.fractions.items():
        value = _SCALE[contrast] * signal(tissue, contrast, params, head.anatomy.enhancing_gd_mm)
        image += np.float32(value) * fraction
    return image * head.bias
