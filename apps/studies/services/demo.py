"""The demo reader study, built with the same definition services an admin uses."""

import time
from collections.abc import Callable

from apps.accounts.models import Role, User
from apps.imaging.models import Case, EnhancementJob, JobStatus
from apps.studies.models import ReaderStudy
from apps.studies.services import definition

DEMO_TITLE = "Demo: DL enhancement of glioma MRI"


def wait_for_enhancement(timeout_s: float, report: Callable[[int, int], None]) -> bool:
    """Waits until the worker has finished every enhancement job; True when none is left queued or running."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        total = EnhancementJob.objects.count()
        finished = EnhancementJob.objects.filter(status__in=[JobStatus.DONE, JobStatus.FAILED]).count()
        if (finished, total) != last:
            report(finished, total)
            last = (finished, total)
        if finished == total:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def create_demo_study(seed: int = 2026) -> ReaderStudy:
    """A cross-site single-mode study of every demo case, open for reading, with one calibration case per site:
    each reader then reads two calibration cases (six images) first, enough to keep the two versions of each
    image four positions apart there too."""
    existing = ReaderStudy.objects.filter(title=DEMO_TITLE).first()
    if existing is not None:
        return existing
    study = definition.create_study(DEMO_TITLE, seed=seed, readers_per_case=2, min_distance=4)
    cases = list(Case.objects.order_by("code"))
    calibration = list({case.institution_id: case for case in reversed(cases)}.values())  # each site's first
    definition.set_readers(study, User.objects.filter(role=Role.READER).order_by("pseudonym"))
    definition.set_cases(study, [c for c in cases if c not in calibration], calibration=calibration)
    definition.generate(study)
    definition.open_for_reading(study)
    study.refresh_from_db()
    return study
