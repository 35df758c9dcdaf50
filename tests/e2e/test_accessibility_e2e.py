"""Accessibility of the reader's pages (issue 12, item 7): the reading page fits 1366x768 and 1920x1080 without
scrolling its score panel, and axe-core (frontend/node_modules, pinned in package.json) finds no serious or
critical violation on the worklist and the reading page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from apps.studies.models import ReadingTask
from tests.e2e.test_reading_e2e import login, wait_rendered
from tests.e2e.world import build_reading_world

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = [(1366, 768), (1920, 1080)]
# What the reader must reach on the score panel without scrolling it.
PANEL_PARTS = [".rs-item:last-child", ".rs-toolbar", ".rs-submit", ".rs-roi-box summary"]


def axe_violations(page) -> list[dict]:
    """Serious and critical violations of WCAG 2.x A/AA and best practice rules on the page as it is now."""
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing (cd frontend && npm ci)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
      const r = await axe.run(document, { resultTypes: ['violations'] });
      return { passes: r.passes.length, violations: r.violations.map(v => ({ id: v.id, impact: v.impact,
        help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary) })) };
    }""")
    assert result["passes"] > 10, result  # axe ran its rules on this page
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def assert_panel_fits(page, width: int, height: int) -> None:
    panel = page.evaluate("() => { const p = document.querySelector('.rs-panel'); "
                          "return { scroll: p.scrollHeight, client: p.clientHeight }; }")
    assert panel["scroll"] <= panel["client"], f"the score panel scrolls at {width}x{height}: {panel}"
    for part in PANEL_PARTS:
        b = box(page, part)
        assert b is not None and b["y"] >= 0 and b["y"] + b["height"] <= height, (part, b, width, height)
    assert page.evaluate("() => document.scrollingElement.scrollHeight <= innerHeight"), "the page scrolls"


@pytest.mark.parametrize("mode", ["paired", "single"])
@pytest.mark.parametrize("width,height", SIZES)
def test_the_reading_page_fits_the_screen_without_scrolling_the_score_panel(page, live_server, artifacts, mode,
                                                                            width, height):
    page.set_viewport_size({"width": width, "height": height})
    world = build_reading_world(mode=mode, cases=1, slices=6, size=64, username=f"e2e-fit-{mode}-{width}",
                                calibration=1)
    task = ReadingTask.objects.filter(reader=world.reader).order_by("position").first()
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{task.token}/")
    panels = ("A", "B") if mode == "paired" else ("A",)
    wait_rendered(page, panels=panels)
    page.wait_for_selector("#reading-app[data-rois-loaded]")
    assert_panel_fits(page, width, height)
    for key in "43434":  # the focus moves down the items, the focused one opens its anchors
        page.keyboard.press(key)
    assert_panel_fits(page, width, height)
    page.screenshot(path=str(artifacts / f"reading2-fit-{mode}-{width}x{height}.png"))
    page.click(".rs-roi-box summary")  # the optional ROI panel opened: its top line stays in view
    b = box(page, ".rs-roi-box summary")
    assert b["y"] + b["height"] <= height
    assert page.errors == []


@pytest.mark.parametrize("width,height", SIZES)
def test_axe_finds_no_serious_violation_on_the_worklist_and_the_reading_page(page, live_server, artifacts,
                                                                            width, height):
    page.set_viewport_size({"width": width, "height": height})
    world = build_reading_world(mode="paired", cases=1, slices=6, size=64, username=f"e2e-axe-{width}",
                                calibration=1)
    login(page, world.username, world.password)
    page.goto("/reading/")
    found = {"worklist": axe_violations(page)}
    page.get_by_role("link", name="Start").first.click()
    wait_rendered(page, panels=("A", "B"))
    page.wait_for_selector("#reading-app[data-rois-loaded]")
    found["reading"] = axe_violations(page)
    page.keyboard.press("?")
    found["reading, help open"] = axe_violations(page)
    (artifacts / f"axe-{width}.json").write_text(json.dumps(found, indent=1))
    assert not any(found.values()), json.dumps(found, indent=1)
    assert page.errors == []


FOCUSED = """() => { const e = document.activeElement; const r = e.getBoundingClientRect();
  const name = (e.getAttribute('aria-label') || e.innerText || e.value || '').trim();
  return { tag: e.tagName, cls: e.className, name, x: r.x, y: r.y, w: r.width, h: r.height,
           inApp: Boolean(e.closest('#reading-app')) }; }"""


def test_tab_goes_through_the_reading_page_in_reading_order_and_only_to_what_is_seen(page, live_server):
    """Focus order: the page under the reading app (its header, links) is out of reach; Tab goes header -> panels
    A/B -> one stop per item -> view tools -> submit -> ROIs, every stop visible, named and inside the screen."""
    page.set_viewport_size({"width": 1366, "height": 768})
    world = build_reading_world(mode="paired", cases=1, slices=6, size=64, username="e2e-focus", calibration=1)
    login(page, world.username, world.password)
    page.goto("/reading/")
    page.get_by_role("link", name="Start").first.click()
    wait_rendered(page, panels=("A", "B"))
    page.wait_for_selector("#reading-app[data-rois-loaded]")
    stops = []
    for _ in range(40):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop["tag"] == "BODY" or (stops and stop == stops[0]):
            break
        stops.append(stop)
    assert stops and all(s["inApp"] for s in stops), [s["name"] for s in stops if not s["inApp"]]
    for s in stops:
        assert s["name"], s
        assert s["w"] > 0 and s["h"] > 0 and s["y"] >= 0 and s["y"] + s["h"] <= 768 and s["x"] + s["w"] <= 1366, s
    kinds = [s["cls"].split()[0] if s["cls"] else s["tag"] for s in stops]
    order = ["rs-keys-button", "rs-tab", "rs-anchor", "rs-tool", "rs-submit", "SUMMARY"]
    firsts = [kinds.index(k) for k in order]
    assert firsts == sorted(firsts), kinds
    assert kinds.count("rs-anchor") == 7, kinds  # one stop per item (a roving tabindex inside each)
    assert page.errors == []
