"""Calibration keeps the study's minimum distance: a calibration set too small for it is refused, with the reason,
in the admin and the API; nothing is generated and the admin is told what to change."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.studies.models import ReadingTask
from apps.studies.services import definition
from tests.factories import AdminFactory, CaseFactory, InstitutionFactory, ReaderFactory, ReaderStudyFactory
from tests.studies.conftest import image_pair

pytestmark = pytest.mark.django_db

SEQUENCES = ("T2W", "FLAIR")


def draft_study(calibration: list[int], min_distance: int = 4, per_site: int = 3):
    sites = [InstitutionFactory(code=f"site{n}", pseudonym=f"Site {n}") for n in "abc"]
    readers = [ReaderFactory(institution=site, username=f"reader-{site.code}", pseudonym=f"R-{site.code}")
               for site in sites]
    cases = []
    for site in sites:
        for n in range(per_site):
            case = CaseFactory(institution=site, code=f"{site.code.upper()}-{n}")
            for sequence in SEQUENCES:
                image_pair(case, sequence, slices=1, size=8)
            cases.append(case)
    study = ReaderStudyFactory(sequences=list(SEQUENCES), readers_per_case=1, min_distance=min_distance)
    definition.set_readers(study, readers)
    definition.set_cases(study, cases, calibration=[cases[i] for i in calibration])
    return study


def test_admin_action_refuses_a_calibration_too_short_for_the_distance(client):
    study = draft_study(calibration=[0])  # one case of two sequences: two images, the distance is four
    client.force_login(AdminFactory())
    response = client.post(reverse("admin:studies_readerstudy_changelist"),
                           {"action": "generate_assignment", "_selected_action": [study.pk]}, follow=True)
    assert response.status_code == 200
    errors = [str(m) for m in get_messages(response.wsgi_request)] or [str(m) for m in response.context["messages"]]
    text = "\n".join(errors)
    assert "at least 4 positions apart" in text
    assert "R-siteb: 2 calibration images" in text and "R-sitec: 2 calibration images" in text
    assert "add calibration cases" in text and "lower min_distance" in text
    assert not ReadingTask.objects.filter(study=study).exists()


def test_api_refuses_it_with_400_and_the_reason(client):
    study = draft_study(calibration=[0])
    client.force_login(AdminFactory())
    response = client.post(f"/api/reading/studies/{study.pk}/generate/")
    assert response.status_code == 400
    assert "at least 4 positions apart" in response.json()["detail"]
    assert "R-siteb: 2 calibration images" in response.json()["detail"]
    assert not ReadingTask.objects.filter(study=study).exists()


def test_enough_calibration_keeps_the_distance_and_comes_first(client):
    # One calibration case per site: every reader gets two, four images. Five more cases per site, so that the
    # random assignment (one reader per case) never leaves a reader a main list too short for the distance, which
    # would be refused for that reason instead (a quarter of the seeds with two more cases per site).
    study = draft_study(calibration=[0, 6, 12], per_site=6)
    client.force_login(AdminFactory())
    response = client.post(f"/api/reading/studies/{study.pk}/generate/")
    assert response.status_code == 200, response.content
    for reader in study.readers.all():
        tasks = list(ReadingTask.objects.filter(study=study, reader=reader).order_by("position"))
        calibration = [t for t in tasks if t.calibration]
        assert tasks[: len(calibration)] == calibration
        where = {}
        for index, task in enumerate(calibration):
            where.setdefault((task.case_id, task.sequence), []).append(index)
        assert all(b - a >= 4 for a, b in where.values())


def test_demo_study_calibrates_every_reader_within_the_distance():
    """The demo's study (min_distance 4) takes one calibration case per site, so every reader reads two calibration
    cases (six images) first, the versions of each at least four apart."""
    from apps.studies.services.demo import create_demo_study

    sites = [InstitutionFactory(code=f"site{n}") for n in "abc"]
    readers = [ReaderFactory(institution=site, username=f"reader-{site.code}") for site in sites]
    for site in sites:
        for n in range(4):
            case = CaseFactory(institution=site, code=f"C-{site.code}{n}")
            for sequence in ("T2W", "FLAIR", "T1W_POST"):
                image_pair(case, sequence, slices=1, size=8)
    study = create_demo_study()
    assert study.min_distance == 4 and study.calibration_cases.count() == 3
    assert study.tasks.count() == 144  # what the README says
    for reader in readers:
        tasks = list(ReadingTask.objects.filter(study=study, reader=reader).order_by("position"))
        calibration = [t for t in tasks if t.calibration]
        assert len(calibration) == 12 and tasks[:12] == calibration
        assert {t.case.institution_id for t in calibration} == {s.pk for s in sites} - {reader.institution_id}
