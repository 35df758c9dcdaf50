"""ROIs for SNR/CNR in headless Chromium: the pixel-index convention on a known pixel (both rendering paths,
non-square pixels), and a reader drawing S1, S2 and background that the server measures on both versions,
that come back on reload, that are replaced and deleted, and whose statistics the reader never sees."""

from __future__ import annotations

import pytest

from apps.analysis.models import RoiMeasurement
from apps.studies.models import ReadingTask
from tests.e2e.test_reading_e2e import (
    SCORE_KEYS,
    assert_no_statistics_shown,
    login,
    pane,
    viewport_centre,
    wait_rendered,
)
from tests.e2e.world import build_known_pixel_world, build_reading_world

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BRIGHT = (3, 11)
GEOMETRY = ("slice_index", "center_row", "center_col", "radius_rows", "radius_cols")
APP = "document.getElementById('reading-app')"

# The bounding box, in page coordinates, of the canvas pixels brighter than a quarter of the brightest: the
# image's one bright pixel, whose centre is the middle of the box whatever the interpolation.
BRIGHT_BOX = """(selector) => {
  const canvas = document.querySelector(selector);
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let max = 0;
  for (let i = 0; i < data.length; i += 4) max = Math.max(max, data[i]);
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < canvas.height; y++) for (let x = 0; x < canvas.width; x++) {
    if (data[(y * canvas.width + x) * 4] > max / 4) {
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
  }
  const r = canvas.getBoundingClientRect();
  const sx = r.width / canvas.width, sy = r.height / canvas.height;
  return { x: r.left + (x0 + x1 + 1) / 2 * sx, y: r.top + (y0 + y1 + 1) / 2 * sy, max };
}"""


def drag(page, x: float, y: float, dx: float, dy: float) -> None:
    """The ellipse tool draws around the point pressed; the drag sets the radii."""
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=5)
    page.mouse.up()


def rois(page, panel: str = "A") -> list[dict]:
    return page.evaluate(f"() => {APP}.readerApp.getRois().{panel} || []")


def wait_rois(page, count: int, panel: str = "A") -> list[dict]:
    page.wait_for_function(f"() => ({APP}.readerApp.getRois().{panel} || []).length === {count}")
    return rois(page, panel)


def wait_roi_saved(page) -> None:
    page.wait_for_selector('.rs-roi-status[data-status="saved"]', timeout=10_000)


def by_label(items: list[dict]) -> dict[str, dict]:
    return {r["label"]: r for r in items}


@pytest.mark.parametrize("rendering", ["cpu", "webgl"])
def test_an_ellipse_around_a_known_pixel_is_saved_at_that_pixel_index(page, live_server, rendering):
    """The convention check: whatever the rendering path, an ellipse drawn around the pixel the reader sees
    at (row 3, column 11) is sent as centre (3, 11), and the server's mask then holds that pixel and its four
    neighbours (mean 1000 / 5 on the conventional image, 2000 / 5 on the DL one)."""
    world = build_known_pixel_world(username=f"e2e-pixel-{rendering}")
    task = ReadingTask.objects.filter(reader=world.reader).order_by("position").first()
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{task.token}/?render={rendering}")
    wait_rendered(page)
    page.wait_for_selector(f'#reading-app[data-rois-loaded="{task.token}"]')
    page.wait_for_timeout(300)
    spot = page.evaluate(BRIGHT_BOX, f"{pane()} canvas")
    assert spot["max"] > 0, spot

    # A first ellipse gives the screen size of a pixel; the second, 1.2 pixels in radius, replaces it.
    page.keyboard.press("Shift+Digit1")
    drag(page, spot["x"], spot["y"], 40, 40)
    (first,) = wait_rois(page, 1)
    per_col, per_row = 40 / first["roi"]["radius_cols"], 40 / first["roi"]["radius_rows"]
    page.keyboard.press("Shift+Digit1")
    drag(page, spot["x"], spot["y"], 1.2 * per_col, 1.2 * per_row)
    page.wait_for_function(f"() => {APP}.readerApp.getRois().A.length === 1 && "
                           f"{APP}.readerApp.getRois().A[0].uid !== '{first['uid']}'")
    (roi,) = rois(page)
    assert roi["label"] == "S1"
    assert roi["roi"]["center_row"] == pytest.approx(BRIGHT[0], abs=0.1)
    assert roi["roi"]["center_col"] == pytest.approx(BRIGHT[1], abs=0.1)
    assert roi["roi"]["slice_index"] == 1
    wait_roi_saved(page)

    saved = RoiMeasurement.objects.get()
    assert (saved.center_row, saved.center_col) == (roi["roi"]["center_row"], roi["roi"]["center_col"])
    assert saved.conventional_pixels == saved.dl_pixels == 5
    assert saved.conventional_mean == pytest.approx(1000 / 5)
    assert saved.dl_mean == pytest.approx(2000 / 5)
    assert_no_statistics_shown(page, roi)
    assert page.errors == []


def test_reader_draws_s1_s2_and_background_which_are_measured_reloaded_replaced_and_deleted(
    page, live_server, artifacts
):
    world = build_reading_world(mode="single", cases=1, slices=8, size=128, username="e2e-rois")
    task = ReadingTask.objects.filter(reader=world.reader).order_by("position").first()
    login(page, world.username, world.password)
    page.goto(f"/reading/task/{task.token}/")
    wait_rendered(page)
    page.wait_for_selector(f'#reading-app[data-rois-loaded="{task.token}"]')
    assert page.eval_on_selector(".rs-rois", "d => d.open") is False  # optional: collapsed until used

    x, y = viewport_centre(page)
    page.keyboard.press("Shift+Digit1")
    drag(page, x - 40, y - 20, 18, 14)  # S1: inside the head
    wait_rois(page, 1)
    assert page.eval_on_selector(".rs-rois", "d => d.open") is True
    page.keyboard.press("Shift+Digit2")
    drag(page, x + 40, y + 30, 15, 15)  # S2
    wait_rois(page, 2)
    # After S2 the next label without an ROI is already picked: background, outside the head.
    assert page.get_attribute(".rs-roi.is-selected", "data-label") == "background"
    # Reaching outside the image: refused by the server, said on the label, not retried.
    box = page.locator(f"{pane()} .rs-viewport").bounding_box()
    side = min(box["width"], box["height"])
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    drag(page, left + 0.02 * side, top + 0.1 * side, 0.05 * side, 0.05 * side)
    page.wait_for_selector('.rs-roi[data-label="background"] .rs-roi-error:has-text("outside the image")')
    page.keyboard.press("Shift+Digit3")
    drag(page, left + 0.1 * side, top + 0.1 * side, 0.05 * side, 0.05 * side)
    page.wait_for_selector('.rs-roi[data-label="background"] .rs-roi-error:empty', state="attached")
    drawn = by_label(wait_rois(page, 3))
    assert set(drawn) == {"S1", "S2", "background"}
    wait_roi_saved(page)
    assert_no_statistics_shown(page, drawn["S1"])
    page.screenshot(path=str(artifacts / "reading-page-rois.png"))

    # The server measured every ROI on both versions, at the geometry the page sent.
    saved = {r.label: r for r in RoiMeasurement.objects.filter(drawn_by=world.reader)}
    assert set(saved) == {"S1", "S2", "background"}
    for label, r in saved.items():
        assert {k: getattr(r, k) for k in GEOMETRY} == drawn[label]["roi"]
        assert r.conventional_pixels > 0 and r.dl_pixels == r.conventional_pixels
        assert r.conventional_sd is not None and r.dl_sd is not None
    # The phantom's "DL" copy is noise-free: the background SD is what the reader must never see.
    assert saved["background"].dl_sd < saved["background"].conventional_sd
    listed = page.evaluate(f"() => fetch('/api/analysis/rois/{task.token}/').then(r => r.json())")
    assert [set(item) for item in listed] == [{"label", *GEOMETRY}] * 3  # geometry only, no statistics

    # Reload: the ROIs come back where they were, with their labels.
    page.reload()
    wait_rendered(page)
    page.wait_for_selector(f'#reading-app[data-rois-loaded="{task.token}"]')
    back = by_label(wait_rois(page, 3))
    for label in saved:
        assert back[label]["roi"] == pytest.approx(drawn[label]["roi"], abs=1e-3)
    assert page.eval_on_selector(".rs-rois", "d => d.open") is True
    assert_no_statistics_shown(page, back["S2"])

    # Redraw S1 elsewhere: replaced, not added. Delete S2 with its button.
    page.keyboard.press("Shift+Digit1")
    drag(page, x - 10, y + 10, 12, 12)
    page.wait_for_function(
        f"() => {APP}.readerApp.getRois().A.filter(r => r.label === 'S1' && r.uid !== '{back['S1']['uid']}')"
        ".length === 1"
    )
    assert len(rois(page)) == 3
    page.click('.rs-roi[data-label="S2"] .rs-roi-delete')
    wait_rois(page, 2)
    page.wait_for_function("() => document.querySelector('.rs-roi-status').dataset.status === 'saved'")
    page.wait_for_function(
        "() => document.querySelector('.rs-roi[data-label=\"S2\"]').dataset.state === 'empty'"
    )
    redrawn = by_label(rois(page))["S1"]["roi"]
    page.wait_for_timeout(200)
    assert set(RoiMeasurement.objects.filter(drawn_by=world.reader).values_list("label", flat=True)) == {
        "S1", "background"
    }
    assert RoiMeasurement.objects.get(drawn_by=world.reader, label="S1").center_col == redrawn["center_col"]

    # ROIs never hold up scoring: score and submit straight away.
    page.keyboard.press("Escape")
    for key in SCORE_KEYS:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__readerMetrics.transitions.length === 1", timeout=15_000)
    assert page.errors == []
