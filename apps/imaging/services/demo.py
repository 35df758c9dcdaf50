"""The demo installation: three sites, their people, and synthetic studies imported through normal ingestion.

Everything goes through the same services a real site uses (staging, validation, de-identification, metadata
CSV import), so the demo also shows those paths working.
"""

import csv
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.services import create_member
from apps.imaging import synthetic
from apps.imaging.models import UploadBatch
from apps.imaging.services import ingest, metadata, uploads
from apps.institutions.models import Institution
from apps.institutions.services import add_site

logger = logging.getLogger(__name__)

DEMO_SITES = (
    ("north", "North University Hospital"),
    ("east", "East Regional Medical Centre"),
    ("south", "South Neurology Institute"),
)
TUMOURS = (("glioblastoma", 4, "wildtype", "intact"), ("astrocytoma", 3, "mutant", "intact"),
           ("oligodendroglioma", 2, "mutant", "codeleted"), ("astrocytoma", 2, "mutant", "intact"))


@dataclass
class DemoLogin:
    username: str
    password: str
    role: str
    site: str


@dataclass
class DemoData:
    sites: list[Institution]
    logins: list[DemoLogin]
    batches: list[UploadBatch]


def _member(username: str, role: Role, site: Institution | None, pseudonym: str = "") -> DemoLogin:
    password = f"demo-{username}"
    if not User.objects.filter(username=username).exists():
        create_member(username, password, role, site, pseudonym=pseudonym)
    return DemoLogin(username, password, role.label, site.code if site else "all")


def create_people(sites: list[Institution]) -> list[DemoLogin]:
    logins = [_member("admin", Role.ADMIN, None)]
    for number, site in enumerate(sites, start=1):
        logins.append(_member(f"coordinator-{site.code}", Role.COORDINATOR, site))
        logins.append(_member(f"reader-{site.code}", Role.READER, site, pseudonym=f"R{number}"))
    return logins


def _metadata_csv(patients: list[synthetic.SyntheticPatient]) -> io.BytesIO:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["patient_id", "age", "sex", "tumour_type", "who_grade", "idh_status", "codeletion_1p19q"])
    for patient in patients:
        tumour, grade, idh, codeletion = TUMOURS[(patient.index + patient.site_index) % len(TUMOURS)]
        writer.writerow([patient.patient_id, int(patient.age.rstrip("Y")), patient.sex, tumour, grade, idh,
                         codeletion])
    return io.BytesIO(out.getvalue().encode())


def import_site_studies(site: Institution, site_index: int, patients_per_site: int, seed: int,
                        shape_2d: tuple[int, int, int], shape_3d: tuple[int, int, int]) -> UploadBatch:
    """Generates the site's synthetic studies in a temporary folder and imports them as one upload."""
    patients = [synthetic.make_patient(site_index, index, seed) for index in range(patients_per_site)]
    with tempfile.TemporaryDirectory(prefix="readerstudy-demo-") as tmp:
        for patient in patients:
            synthetic.write_study(Path(tmp) / f"patient{patient.index:02d}", patient,
                                  synthetic.SITE_PROFILES[site_index], shape_2d=shape_2d, shape_3d=shape_3d,
                                  seed=seed)
        batch = uploads.stage_path(site, None, Path(tmp), channel="command")
    batch = ingest.process_batch(batch.pk)
    report = metadata.import_case_metadata(_metadata_csv(patients), site)
    if report.errors:
        raise RuntimeError("; ".join(report.errors))
    return batch


def create_demo(patients_per_site: int = 4, seed: int = 2026, shape_2d: tuple[int, int, int] = (16, 128, 128),
                shape_3d: tuple[int, int, int] = (24, 128, 128)) -> DemoData:
    """Creates the demo sites, people and imported cases; a second run adds nothing new."""
    with transaction.atomic():
        sites = [add_site(code, name) for code, name in DEMO_SITES]
        logins = create_people(sites)
    batches = [
        import_site_studies(site, index, patients_per_site, seed, shape_2d, shape_3d)
        for index, site in enumerate(sites)
    ]
    return DemoData(sites, logins, batches)
