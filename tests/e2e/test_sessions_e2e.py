"""A two-session study in headless Chromium (issue 14, item 4): the reader finishes session 1, the worklist shows
session 2 locked with the date it opens, the server refuses its tasks, the clock moves past the washout
(time-machine moves the one clock of the product, in the live server too), and session 2 opens with the other
version of each image."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from apps.studies.models import ReadingTask, TaskStatus
from apps.studies.services import definition, reading
from tests.e2e.test_accessibility_e2e import axe_violations
from tests.e2e.test_reading_e2e import SCORE_KEYS, assert_not_blank, login, wait_rendered
from tests.e2e.world import _series_pair
from tests.factories import PASSWORD, CaseFactory, InstitutionFactory, ReaderFactory, ReaderStudyFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WASHOUT_DAYS = 21
SHOTS = Path(settings.BASE_DIR) / "var" / "shots"


def two_session_study(cases: int = 2):
    """One reader of one site; `cases` cases of another site with a T2W pair each, read in two sessions."""
    reader = ReaderFactory(institution=InstitutionFactory(name="Reader Hospital", code="rdr", pseudonym="Site R"),
                           username="e2e-sessions", pseudonym="R1")
    site = InstitutionFactory(name="Imaging Hospital", code="img", pseudonym="Site I")
    case_list = []
    for n in range(cases):
        case = CaseFactory(institution=site, code=f"E2E-S-{n:03d}")
        _series_pair(case, "T2W", 8, 96, seed=31 + n)
        case_list.append(case)
    study = ReaderStudyFactory(title="Two sessions", mode="single", sequences=["T2W"], readers_per_case=1,
                               sessions=2, washout_days=WASHOUT_DAYS)
    definition.set_readers(study, [reader])
    definition.set_cases(study, case_list)
    definition.generate(study)
    definition.open_for_reading(study)
    return study, reader


def read_to_the_end_of_the_session(page, tasks) -> dict[int, dict]:
    """Scores each task by keyboard and submits with Enter; returns the canvas statistics of each image shown."""
    shown = {}
    for task in tasks:
        page.wait_for_url(re.compile(rf"/reading/task/{task.token}/$"))
        wait_rendered(page)
        shown[task.pk] = assert_not_blank(page)
        for key in SCORE_KEYS:
            page.keyboard.press(key)
        page.wait_for_selector('.rs-save[data-status="saved"]')
        page.keyboard.press("Enter")
    page.wait_for_selector('#reading-app[data-state="done"]')
    return shown


def test_two_sessions_the_second_locked_until_the_washout_has_passed(page, live_server):
    study, reader = two_session_study()
    tasks = list(ReadingTask.objects.filter(study=study, reader=reader).order_by("position"))
    first = [t for t in tasks if t.session == 1]
    second = [t for t in tasks if t.session == 2]
    assert len(first) == len(second) == 2
    versions = {t.case_id: t.version for t in first}
    assert sorted(versions.values()) == ["conventional", "dl"], "one image conventional first, the other DL first"

    login(page, reader.username, PASSWORD)
    page.goto("/reading/")
    assert page.get_attribute('tr[data-session="2"]', "data-open") == "false"
    page.get_by_role("link", name="Start").click()
    session_1 = read_to_the_end_of_the_session(page, first)
    ended = ReadingTask.objects.filter(pk__in=[t.pk for t in first]).latest("submitted_at").submitted_at
    opens = ended + timedelta(days=WASHOUT_DAYS)
    when = reading.opening_text(opens)
    done = page.text_content("#reading-app")
    assert "Session finished" in done and f"Session 2 of 2 opens on {when}" in done, done

    # The worklist: session 1 finished, session 2 locked with the date it opens, nothing to start.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.get_by_role("link", name="Back to the worklist").click()
    page.wait_for_url(re.compile(r"/reading/$"))
    assert page.get_attribute('tr[data-session="1"]', "data-open") == "true"
    assert page.get_attribute('tr[data-session="2"]', "data-open") == "false"
    locked_row = page.text_content('tr[data-session="2"]')
    assert "Locked" in locked_row and f"{opens:%a %-d %b %Y, %H:%M} UTC" in locked_row, locked_row
    assert f"Session 2 of 2 opens on {when}" in page.text_content(".worklist-session-locked")
    assert page.get_by_role("link", name=re.compile("Start|Resume|Review")).count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "worklist-session-locked.png"), full_page=True)
    assert axe_violations(page) == []  # no serious or critical WCAG violation in the sessions table and notice

    # Not only hidden: the server refuses the session's page, its API and its images.
    answer = page.goto(f"/reading/task/{second[0].token}/")
    assert answer.status == 403 and f"opens on {when}" in page.text_content("main, body")
    api = page.request.get(f"/api/reading/tasks/{second[0].token}/")
    assert api.status == 403 and api.json()["detail"].startswith("Session 2 of 2 opens on")
    image = second[0].panels.get().image_token
    assert page.request.get(f"/reading/img/{image}/0.dcm").status == 404

    # Three weeks later: the clock of the product (in the live server too) is past the washout.
    with time_machine.travel(opens + timedelta(hours=2)):
        login(page, reader.username, PASSWORD)  # a login lasts 12 hours: the reader logs in again
        page.goto("/reading/")
        assert page.get_attribute('tr[data-session="2"]', "data-open") == "true"
        page.screenshot(path=str(SHOTS / "worklist-session-open.png"), full_page=True)
        page.get_by_role("link", name="Resume").click()
        session_2 = read_to_the_end_of_the_session(page, second)
        assert "All images scored" in page.text_content("#reading-app")

    # Session 2 showed each image's other version: a different series, and (the DL copy is smoother) other pixels.
    for task in second:
        earlier = next(t for t in first if t.case_id == task.case_id)
        assert task.version != earlier.version
        assert task.panels.get().series_id != earlier.panels.get().series_id
        assert session_2[task.pk]["hash"] != session_1[earlier.pk]["hash"]
    assert all(t.status == TaskStatus.SUBMITTED for t in ReadingTask.objects.filter(study=study, reader=reader))
    assert page.errors == []
