"""Window presets per study (issue 12, item 2) in headless Chromium: an admin sets the study's F2/F3 for a sequence
on the study's admin page while it is a draft (bad input refused there with the reason), and once the study is open
the reader's F2 and F3 are the admin's presets, named on both panels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from apps.studies.models import ReaderStudy, ReadingTask, Score
from apps.studies.services import definition
from tests.e2e.test_reading_e2e import login, pane, wait_rendered
from tests.e2e.world import build_reading_world
from tests.factories import PASSWORD, AdminFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "var" / "shots"
PRESETS = {"T2W": [{"key": "F2", "name": "Lesion edge", "width": 0.5, "level": 0.2},
                   {"key": "F3", "name": "Very wide", "width": 2.5, "level": 0.0}]}


def window_label(page, panel: str) -> str:
    return page.get_attribute(pane(panel), "data-window")


def test_the_admin_sets_presets_per_study_and_the_reader_gets_them_on_f2_f3(page, live_server):
    world = build_reading_world(mode="paired", cases=1, slices=6, size=96, username="e2e-study-presets", draft=True)
    admin = AdminFactory(username="e2e-admin")
    admin.set_password(PASSWORD)
    admin.save()
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/admin/login/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"/admin/studies/readerstudy/{world.study.pk}/change/")

    field = page.locator("#id_window_presets")
    field.fill(json.dumps({"T2W": [{"key": "F1", "name": "Mine", "width": 1, "level": 0}]}))
    page.click("input[name=_continue]")
    assert "key must be F2 or F3 (F1 is the stored window)" in page.inner_text(".errorlist")
    assert ReaderStudy.objects.get(pk=world.study.pk).window_presets == {}
    page.locator("#id_window_presets").fill(json.dumps(PRESETS))
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert ReaderStudy.objects.get(pk=world.study.pk).window_presets == PRESETS
    page.locator("#id_window_presets").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-study-window-presets.png"))
    page.context.clear_cookies()

    definition.open_for_reading(world.study)
    (task,) = ReadingTask.objects.filter(reader=world.reader)
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{task.token}/")
    wait_rendered(page, panels=("A", "B"))
    assert window_label(page, "A") == "W 100% · L ±0% · F1 Stored"
    page.keyboard.press("F2")
    page.wait_for_function("() => document.querySelector('.rs-pane[data-panel=\"B\"]').dataset.window"
                           ".includes('F2')", timeout=5_000)
    assert {p: window_label(page, p) for p in "AB"} == {p: "W 50% · L +20% · F2 Lesion edge" for p in "AB"}
    page.screenshot(path=str(SHOTS / "reading-study-window-presets.png"))
    page.keyboard.press("F3")
    page.wait_for_function("() => document.querySelector('.rs-pane[data-panel=\"A\"]').dataset.window"
                           ".includes('F3')", timeout=5_000)
    assert window_label(page, "A") == "W 250% · L ±0% · F3 Very wide"
    assert not Score.objects.filter(task=task).exists()  # no preset key scored anything
    assert page.errors == []
