"""Audited revise (issue 12, defect 3) in headless Chromium: where the study allows it, the finished reader's
read-only review offers "Revise scores"; score keys stay refused until that explicit step, after which the scores
change and the submit records old and new; the revision (who, which task, when) is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from apps.studies.models import ReadingTask, ScoreAudit, TaskRevision
from apps.studies.services import definition
from tests.e2e.test_reading_e2e import SCORE_KEYS, checked_values, login, score_every_task, wait_rendered
from tests.e2e.world import build_reading_world

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "var" / "shots"


def test_the_review_offers_revise_where_the_study_allows_it_and_the_revision_is_recorded(page, live_server):
    world = build_reading_world(mode="single", cases=1, slices=6, size=64, username="e2e-revise", draft=True)
    world.study.allow_revision = True  # the admin's choice while the study is a draft
    world.study.save(update_fields=["allow_revision"])
    definition.open_for_reading(world.study)
    tasks = list(ReadingTask.objects.filter(reader=world.reader).order_by("position"))
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{tasks[0].token}/")
    wait_rendered(page)
    assert page.locator(".rs-revise").is_hidden()  # not before the reader has finished
    score_every_task(page, tasks)

    page.goto(f"/reading/task/{tasks[0].token}/")
    wait_rendered(page)
    assert page.text_content(".rs-save") == "Read-only review — scores as submitted"
    page.keyboard.press("1")  # still read-only: refused in words
    assert page.text_content(".rs-message") == "Read-only review: your scores stay as submitted."
    assert checked_values(page) == list(SCORE_KEYS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "reading-review-revise.png"))
    assert not TaskRevision.objects.exists()

    page.get_by_role("button", name="Revise scores").click()
    page.wait_for_selector('.rs-save[data-status="revising"]')
    revision = TaskRevision.objects.get()
    assert (revision.task_id, revision.reader_id, revision.submitted_at) == (tasks[0].pk, world.reader.pk, None)
    page.screenshot(path=str(SHOTS / "reading-revising.png"))
    assert "Read-only" not in page.text_content(".rs-roi-box")  # ROIs follow the scores
    page.keyboard.press("5")  # the first item: 4 -> 5
    page.wait_for_selector('.rs-save[data-status="saved"]')
    assert checked_values(page)[0] == "5"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.rs-position').textContent.startsWith('Image 2')")
    revision.refresh_from_db()
    assert revision.submitted_at is not None
    change = ScoreAudit.objects.filter(score__task=tasks[0], old_value__isnull=False).get()
    assert (change.old_value, change.new_value, change.changed_by_id) == (4, 5, world.reader.pk)
    assert page.text_content(".rs-save") == "Read-only review — scores as submitted"  # the next image: review
    assert page.errors == []
