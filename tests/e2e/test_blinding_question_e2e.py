"""The blinding question on the reading page (issue 14, item 6), in headless Chromium against the live server: asked
once per task after its scores are submitted and before the next image, answered by keys that score nothing (or
by its buttons), never asked again, and never changing the images the reader is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from apps.analysis.models import BlindingGuess
from apps.studies.models import ReadingTask, TaskStatus
from tests.e2e.test_reading_e2e import SCORE_KEYS, login, pane, stats, wait_rendered
from tests.e2e.world import build_reading_world

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "var" / "shots"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def view_of(page, panels) -> list:
    """What the reader sees of the images: each pane's slice and canvas."""
    return [(page.get_attribute(pane(p), "data-slice"), stats(page, p)) for p in panels]


def test_paired_question_after_the_submit_by_key_once_and_the_images_unchanged(page, live_server):
    world = build_reading_world(mode="paired", cases=2, slices=6, size=96, username="e2e-bq-paired",
                                blinding_question=True)
    tasks = list(ReadingTask.objects.filter(reader=world.reader).order_by("position"))
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{tasks[0].token}/")
    wait_rendered(page, panels=("A", "B"))
    assert page.locator(".rs-bq").count() == 0  # never before the scores are submitted

    for key in SCORE_KEYS + SCORE_KEYS:
        page.keyboard.press(key)
    before = view_of(page, ("A", "B"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Which panel do you think is DL-enhanced?")
    dialog.wait_for()
    tasks[0].refresh_from_db()
    assert tasks[0].status == TaskStatus.SUBMITTED  # asked only after the scores are in
    assert [b.strip() for b in dialog.locator(".rs-bq-choice").all_inner_texts()] == [
        "Panel A (left)\nA", "Panel B (right)\nB", "Don't know\nD"]
    assert view_of(page, ("A", "B")) == before  # the question changes nothing the reader is shown
    assert page.text_content(".rs-position") == "Image 1 of 2"
    shot(page, "reading-blinding-question-paired.png")

    page.keyboard.press("3")  # a score key answers nothing, and says so
    assert "was not used" in page.text_content(".rs-bq-note")
    assert not BlindingGuess.objects.exists()
    page.keyboard.press("b")
    page.wait_for_function("() => window.__readerMetrics.transitions.length === 1", timeout=15_000)
    assert page.text_content(".rs-position") == "Image 2 of 2"
    assert page.locator(".rs-bq").count() == 0
    assert BlindingGuess.objects.get(task=tasks[0]).answer == "B"

    # The second task: Esc skips, and the skip is kept (the study's Table 8 counts it as not answered).
    for key in SCORE_KEYS + SCORE_KEYS:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.get_by_role("dialog").wait_for()
    page.keyboard.press("Escape")
    page.wait_for_selector('#reading-app[data-state="done"]')
    assert BlindingGuess.objects.get(task=tasks[1]).answer == "skipped"

    # Never asked again: the review of a finished study moves on without the question.
    page.goto(f"/reading/task/{tasks[0].token}/")
    wait_rendered(page, panels=("A", "B"))
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__readerMetrics.transitions.length === 1", timeout=15_000)
    assert page.locator(".rs-bq").count() == 0
    assert BlindingGuess.objects.count() == 2
    assert page.errors == []


def test_single_question_yes_no_dont_know_by_key_and_not_asked_without_the_setting(page, live_server):
    world = build_reading_world(mode="single", cases=1, slices=6, size=96, username="e2e-bq-single",
                                blinding_question=True)
    plain = build_reading_world(mode="single", cases=1, slices=6, size=96, reader=world.reader, title="Plain")
    first = ReadingTask.objects.filter(study=world.study).order_by("position").first()
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{first.token}/")
    wait_rendered(page)
    for key in SCORE_KEYS:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Was this image DL-enhanced?")
    dialog.wait_for()
    assert dialog.locator(".rs-bq-choice").all_inner_texts() == [
        "Yes, DL-enhanced\nY", "No, conventional\nN", "Don't know\nD"]
    page.set_viewport_size({"width": 1366, "height": 768})
    shot(page, "reading-blinding-question-single.png")
    page.keyboard.press("y")
    page.wait_for_function("() => window.__readerMetrics.transitions.length === 1", timeout=15_000)
    assert BlindingGuess.objects.get(task=first).answer == "dl"

    # A study without the question goes straight to the next image.
    other = ReadingTask.objects.filter(study=plain.study).order_by("position").first()
    page.goto(f"/reading/task/{other.token}/")
    wait_rendered(page)
    for key in SCORE_KEYS:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__readerMetrics.transitions.length === 1", timeout=15_000)
    assert page.locator(".rs-bq").count() == 0
    assert not BlindingGuess.objects.filter(task=other).exists()
    assert page.errors == []
