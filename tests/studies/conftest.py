"""A small, complete study: three sites, one reader each, cases with conventional/DL pairs of real slices."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from apps.imaging.models import EnhancementJob, Series, SeriesSource, Version
from apps.studies.models import ReaderStudy
from apps.studies.services import definition
from tests.factories import (
    CaseFactory,
    InstanceFactory,
    InstitutionFactory,
    ReaderFactory,
    ReaderStudyFactory,
    SeriesFactory,
    link_dl,
)

MODEL_NAME = "ctx-unet-glioma-v7"


@dataclass
class World:
    study: ReaderStudy
    sites: list = field(default_factory=list)
    readers: list = field(default_factory=list)
    cases: list = field(default_factory=list)


def deidentification_record(case) -> dict:
    """The standard's record that every stored instance carries after ingest (PS3.15 E.1.1), with a planted
    code meaning that would show if the filter ever copied it: readers must never get any of it."""
    from pydicom.dataset import Dataset

    from apps.imaging import deidentify

    codes = deidentify.method_codes(modified_dates=True, options=(deidentify.CLEAN_PIXEL_DATA,))
    items = []
    for code in codes:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator = code, "DCM"
        item.CodeMeaning = f"{case.code} {deidentify.OPTION_CODES[code]}"[:64]
        items.append(item)
    return {"PatientIdentityRemoved": "YES", "DeidentificationMethod": [deidentify.OPTION_CODES[c] for c in codes],
            "DeidentificationMethodCodeSequence": items, "LongitudinalTemporalInformationModified": "MODIFIED"}


def image_pair(case, sequence: str, slices: int = 3, size: int = 16) -> tuple[Series, Series]:
    """A conventional series and its DL counterpart with the same geometry and different pixels/headers."""
    conventional = SeriesFactory(case=case, sequence=sequence, rows=size, columns=size,
                                 description="AX T2 TSE conventional")
    dl = SeriesFactory(case=case, sequence=sequence, rows=size, columns=size, version=Version.DL,
                       source=SeriesSource.ENHANCED, description=f"AX T2 TSE DL-enhanced {MODEL_NAME}")
    link_dl(conventional, dl)
    EnhancementJob.objects.create(series=conventional, output_series=dl, model_version=MODEL_NAME, status="done",
                                  noise_reduction_factor=16.0, qa={"flagged": False, "failures": []})
    rng = np.random.default_rng(case.pk)
    for index in range(slices):
        clean = rng.integers(200, 3000, (size, size))
        InstanceFactory(series=conventional, index=index, pixels=clean + rng.integers(0, 400, (size, size)),
                        tags={"SeriesDescription": "conventional", "PatientID": case.code,
                              **deidentification_record(case)})
        InstanceFactory(series=dl, index=index, pixels=clean,
                        tags={"SeriesDescription": f"DL enhanced {MODEL_NAME}", "SoftwareVersions": MODEL_NAME,
                              "PatientID": case.code, "RescaleSlope": 1.5, "RescaleIntercept": 0,
                              **deidentification_record(case)})
    return conventional, dl


def build_world(mode: str = "single", cases_per_site: int = 2, sequences=("T2W", "FLAIR"), slices: int = 3,
                calibration: int = 0, plan: dict | None = None, **study_fields) -> World:
    """The study opened for reading; with `plan`, that analysis plan was fixed while it was a draft."""
    sites = [InstitutionFactory(name=f"Hospital {name} Medical Center", code=f"site{name.lower()}",
                                pseudonym=f"Site {name}") for name in ("Alpha", "Bravo", "Charlie")]
    readers = [ReaderFactory(institution=site, username=f"reader{i}", pseudonym=f"R{i}")
               for i, site in enumerate(sites, start=1)]
    cases = []
    for site in sites:
        for n in range(cases_per_site):
            case = CaseFactory(institution=site, code=f"{site.code.upper()}-{n:03d}")
            for sequence in sequences:
                image_pair(case, sequence, slices)
            cases.append(case)
    study = ReaderStudyFactory(title="Glioma DL enhancement vs conventional at Hospital Alpha",
                               reader_label="Reading list", mode=mode, sequences=list(sequences),
                               **{"readers_per_case": 1, "min_distance": 1, **study_fields})
    definition.set_readers(study, readers)
    definition.set_cases(study, cases, calibration=cases[:calibration])
    definition.generate(study)
    if plan is not None:
        from apps.analysis.plan import set_plan

        set_plan(study, plan)
    definition.open_for_reading(study)
    return World(study, sites, readers, cases)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db) -> World:
    return build_world()
