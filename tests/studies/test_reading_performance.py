"""What a reader's request costs: slices use the series' stored window (never the volume), and the task JSON,
autosave and submit endpoints run a bounded number of queries whatever the number of panels and items."""

import pydicom
import pytest

from apps.imaging.models import Series
from apps.imaging.services import windows
from apps.studies.models import DEFAULT_ITEMS
from apps.studies.services import reading
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

ALL_FOURS = {key: 4 for key, _, _ in DEFAULT_ITEMS}
# Session and user (2), the task, then the endpoint's own reads and writes (a write counts its savepoint pair).
TASK_JSON_QUERIES = 11
AUTOSAVE_QUERIES = 12
SUBMIT_QUERIES = 14
SLICE_QUERIES = 4


@pytest.fixture(params=["single", "paired"])
def opened(request, client):
    """A reader logged in on their first task, series windows stored as the worker does."""
    world = build_world(mode=request.param, cases_per_site=1, sequences=("T2W",))
    windows.backfill()
    task = world.study.tasks.order_by("reader", "position").first()
    client.force_login(task.reader)
    return task, f"/api/reading/tasks/{task.token}/"


def no_volume_reads(monkeypatch) -> None:
    def fail(series):
        raise AssertionError("a reader's request read the whole series")

    monkeypatch.setattr(windows, "stored_window", fail)


def test_slices_use_the_window_stored_on_the_series(client, opened, monkeypatch):
    task, url = opened
    panel = task.panels.get(panel="A")
    Series.objects.filter(pk=panel.series_id).update(window_center=1234.5, window_width=678.25)
    no_volume_reads(monkeypatch)
    image_url = client.get(url).json()["panels"][0]["image_urls"][1]
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(client.get(image_url).content))
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (1234.5, 678.25)


def test_a_series_stored_without_a_window_gets_it_once_when_its_task_is_opened(client, opened):
    task, url = opened
    Series.objects.update(window_center=None, window_width=None)
    client.get(url)
    shown = Series.objects.filter(pk__in=task.panels.values("series_id"))
    assert all(s.window_center is not None and s.window_width is not None for s in shown)


def test_task_json_queries_do_not_grow_with_panels(client, opened, django_assert_max_num_queries, monkeypatch):
    _, url = opened
    no_volume_reads(monkeypatch)
    with django_assert_max_num_queries(TASK_JSON_QUERIES):
        assert client.get(url).status_code == 200  # first opening: marks the task opened
    with django_assert_max_num_queries(TASK_JSON_QUERIES - 1):
        assert client.get(url).status_code == 200


def test_autosave_and_submit_query_counts(client, opened, django_assert_max_num_queries):
    task, url = opened
    panels = reading.panels_of(task)
    with django_assert_max_num_queries(AUTOSAVE_QUERIES):
        response = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 3}},
                              content_type="application/json")
    assert response.json() == {"scores": {p: ({"noise": 3} if p == "A" else {}) for p in panels}}
    body = {"scores": {p: ALL_FOURS for p in panels}, "seconds_on_task": 12}
    with django_assert_max_num_queries(SUBMIT_QUERIES):
        assert client.post(url + "submit/", body, content_type="application/json").status_code == 200
    # An identical re-submit writes no score; it ends a revision the reader may have opened (one UPDATE).
    with django_assert_max_num_queries(SUBMIT_QUERIES - 3):
        assert client.post(url + "submit/", body, content_type="application/json").status_code == 200
    assert task.scores.count() == len(panels) * len(DEFAULT_ITEMS)
    assert task.scores.filter(audit__old_value=3, audit__new_value=4).count() == 1


def test_a_slice_reads_one_instance_in_a_bounded_number_of_queries(client, opened, django_assert_max_num_queries):
    _, url = opened
    image_url = client.get(url).json()["panels"][0]["image_urls"][0]
    with django_assert_max_num_queries(SLICE_QUERIES):
        assert client.get(image_url).status_code == 200


def test_a_range_of_slices_costs_the_queries_of_one_slice(client, opened, django_assert_max_num_queries):
    """The viewer loads a stack in ranges: one access check and one instance query per range, not per slice."""
    _, url = opened
    panel = client.get(url).json()["panels"][0]
    last = len(panel["image_urls"]) - 1
    with django_assert_max_num_queries(SLICE_QUERIES):
        response = client.get(f"{panel['slices_url']}?first=0&last={last}")
    assert response.status_code == 200
    assert response.content.count(b"Content-Type: application/dicom") == last + 1


@pytest.mark.parametrize("query, status, reason", [
    ("?first=2&last=1", 400, "first <= last"),
    ("?first=-1&last=1", 400, "first <= last"),
    ("?first=0&last=40", 400, "At most 32 slices"),
    ("?first=a&last=1", 400, "?first=<index>&last=<index>"),
    ("?first=0", 400, "?first=<index>&last=<index>"),
    ("?first=1&last=3", 404, ""),  # the stack has slices 0..2
])
def test_a_malformed_or_outside_range_is_refused_with_its_reason(client, opened, query, status, reason):
    _, url = opened
    panel = client.get(url).json()["panels"][0]
    response = client.get(panel["slices_url"] + query)
    assert response.status_code == status
    assert reason in response.content.decode()
