"""Study data for the browser tests and the browser benchmark: one reader of one site reading brain-phantom
series (conventional and a smoother "DL" version) of another site, through the real services."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from apps.analysis import blinding
from apps.imaging.models import Series, SeriesSource, Version
from apps.institutions.models import Institution
from apps.studies.models import ReaderStudy
from apps.studies.services import definition
from tests.factories import (
    PASSWORD,
    CaseFactory,
    InstanceFactory,
    InstitutionFactory,
    ReaderFactory,
    ReaderStudyFactory,
    SeriesFactory,
    link_dl,
)


@dataclass
class ReadingWorld:
    study: ReaderStudy
    reader: object
    username: str
    password: str = PASSWORD


@functools.lru_cache(maxsize=4)
def phantom_volume(slices: int, size: int, seed: int) -> np.ndarray:
    """A T2W brain phantom with a glioma, (Z, Y, X) uint16 within 12 bits; falls back to ellipses."""
    try:
        from worker.enhance.phantom import make_tissue_model, render_contrast

        volume = render_contrast(make_tissue_model((slices, size, size), seed=seed), "T2W")
    except Exception:  # the phantom needs nilearn's MNI152 maps; any smooth structure will do here
        z, y, x = np.mgrid[0:slices, 0:size, 0:size].astype(np.float32)
        r = np.hypot((x - size / 2) / (0.38 * size), (y - size / 2) / (0.45 * size))
        volume = 1500.0 * (r < 1) * (1 + 0.3 * np.sin(x / 6 + z / 3)) + 200.0 * (r < 0.5)
    volume = 2000.0 * volume / max(float(volume.max()), 1.0)
    return volume.astype(np.float32)


def _series_pair(case, sequence: str, slices: int, size: int, seed: int) -> tuple[Series, Series]:
    conventional = SeriesFactory(case=case, sequence=sequence, rows=size, columns=size)
    dl = SeriesFactory(case=case, sequence=sequence, rows=size, columns=size, version=Version.DL,
                       source=SeriesSource.ENHANCED)
    link_dl(conventional, dl)
    clean = phantom_volume(slices, size, seed)
    rng = np.random.default_rng(seed)
    for index in range(slices):
        noisy = np.abs(clean[index] + rng.normal(0, 60, clean[index].shape))
        InstanceFactory(series=conventional, index=index, pixels=np.clip(noisy, 0, 4095).astype(np.uint16))
        InstanceFactory(series=dl, index=index, pixels=np.clip(clean[index], 0, 4095).astype(np.uint16))
    return conventional, dl


def build_reading_world(mode: str = "single", cases: int = 2, slices: int = 12, size: int = 128,
                        username: str = "e2e-reader", *, calibration: int = 0, reader=None,
                        title: str = "Browser reading", blinding_question: bool = False,
                        draft: bool = False) -> ReadingWorld:
    """Two sites; the reader belongs to the first, every case to the second (the cross-site rule). The first
    `calibration` cases are calibration cases. Given a `reader` of an earlier world, adds a study for them.
    `blinding_question`: the admin switched the blinding question on while the study was a draft. `draft`: the
    study is left a draft (assignment generated, not open yet)."""
    if reader is None:
        reader_site = InstitutionFactory(name="Reader Hospital", code="rdr", pseudonym="Site R")
        case_site = InstitutionFactory(name="Imaging Hospital", code="img", pseudonym="Site I")
        reader = ReaderFactory(institution=reader_site, username=username, pseudonym="R1")
    else:
        case_site, username = Institution.objects.get(code="img"), reader.username
    prefix = f"E2E-{ReaderStudy.objects.count()}"
    case_list = []
    for n in range(cases):
        case = CaseFactory(institution=case_site, code=f"{prefix}-{n:03d}")
        _series_pair(case, "T2W", slices, size, seed=11 + n)
        case_list.append(case)
    study = ReaderStudyFactory(title=title, mode=mode, sequences=["T2W"], readers_per_case=1,
                               min_distance=1)
    definition.set_readers(study, [reader])
    definition.set_cases(study, case_list, calibration=case_list[:calibration])
    definition.generate(study)
    if blinding_question:
        blinding.set_enabled(study, True)
    if not draft:
        definition.open_for_reading(study)
    return ReadingWorld(study=study, reader=reader, username=username)


def build_known_pixel_world(size: tuple[int, int] = (12, 16), bright: tuple[int, int] = (3, 11),
                            spacing: tuple[float, float] = (0.5, 1.25), username: str = "e2e-pixel") -> ReadingWorld:
    """Three slices of non-square pixels: the middle one (shown first) is black but for one pixel of 1000
    (2000 in the "DL" copy); the others are ramps, so the display window is wide and the pixel stands alone."""
    reader_site = InstitutionFactory(name="Reader Hospital", code="rdr", pseudonym="Site R")
    case_site = InstitutionFactory(name="Imaging Hospital", code="img", pseudonym="Site I")
    reader = ReaderFactory(institution=reader_site, username=username, pseudonym="R1")
    case = CaseFactory(institution=case_site, code="E2E-PIXEL")
    rows, columns = size
    conventional = SeriesFactory(case=case, sequence="T2W", rows=rows, columns=columns)
    dl = SeriesFactory(case=case, sequence="T2W", rows=rows, columns=columns, version=Version.DL,
                       source=SeriesSource.ENHANCED)
    link_dl(conventional, dl)
    ramp = np.linspace(0, 4000, rows * columns).reshape(rows, columns).astype(np.uint16)
    for series, value in ((conventional, 1000), (dl, 2000)):
        single = np.zeros(size, dtype=np.uint16)
        single[bright] = value
        for index, pixels in enumerate((ramp, single, ramp)):
            InstanceFactory(series=series, index=index, pixels=pixels, tags={"PixelSpacing": list(spacing)})
    study = ReaderStudyFactory(title="Known pixel", mode="single", sequences=["T2W"], readers_per_case=1,
                               min_distance=1)
    definition.set_readers(study, [reader])
    definition.set_cases(study, [case])
    definition.generate(study)
    definition.open_for_reading(study)
    return ReadingWorld(study=study, reader=reader, username=username)
