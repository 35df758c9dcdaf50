"""The reading API and pages against the frontend contract, and the admin study API."""

import csv
import io

import pytest
from django.urls import reverse

from apps.studies.models import DEFAULT_ITEMS, Score, ScoreAudit, StudyStatus, TaskStatus
from apps.studies.services import reading
from tests.factories import AdminFactory
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

ALL_FOURS = {key: 4 for key, _, _ in DEFAULT_ITEMS}
CONTRACT_KEYS = {
    "token", "position", "total", "mode", "sequence", "calibration", "locked", "review", "submitted", "items", "panels", "scores",
    "session", "window_presets", "revisable", "revising",
    "next_url", "next_task_api", "prev_url", "worklist_url", "calibration_scores_url",
}


def first_task(world, reader):
    return reading.reader_tasks(reader).filter(study=world.study).order_by("position").first()


def test_task_api_follows_the_contract(client, world):
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    body = client.get(f"/api/reading/tasks/{task.token}/").json()
    assert set(body) == CONTRACT_KEYS
    assert (body["token"], body["position"], body["mode"], body["submitted"]) == (task.token, 1, "single", False)
    assert body["sequence"] == task.sequence
    assert body["total"] == reading.reader_tasks(reader).count()
    assert [i["key"] for i in body["items"]] == [k for k, _, _ in DEFAULT_ITEMS]
    assert all(len(i["anchors"]) == 5 for i in body["items"])
    assert [p["panel"] for p in body["panels"]] == ["A"]
    assert len(body["panels"][0]["image_urls"]) == 3
    assert body["panels"][0]["image_urls"][0].startswith("/reading/img/")
    assert body["scores"] == {"A": {}}
    assert body["next_url"].startswith("/reading/task/") and body["prev_url"] is None
    assert body["next_task_api"].startswith("/api/reading/tasks/")
    assert body["worklist_url"] == "/reading/" and body["calibration_scores_url"] is None


def test_fetching_a_task_does_not_open_it_only_showing_it_does(client, world):
    """Issue 12, defect 2: the page prefetches the next task while the reader scores this one; that GET must not
    open it (status, started_at, and so order of opening and time on task in the exports). The page opens a task
    when it shows it."""
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    url = f"/api/reading/tasks/{task.token}/"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    task.refresh_from_db()
    assert (task.status, task.started_at) == (TaskStatus.PENDING, None)

    opened = client.post(url + "open/")
    assert opened.status_code == 200 and opened.json() == {"status": "opened"}
    task.refresh_from_db()
    started = task.started_at
    assert task.status == TaskStatus.OPENED and started
    assert client.post(url + "open/").json() == {"status": "opened"}  # opening again keeps the first time
    task.refresh_from_db()
    assert task.started_at == started
    assert client.get(url + "open/").status_code == 405

    other = first_task(world, world.readers[1])
    assert client.post(f"/api/reading/tasks/{other.token}/open/").status_code == 404
    other.refresh_from_db()
    assert other.started_at is None


def test_autosave_submit_next_and_resume(client, world):
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    url = f"/api/reading/tasks/{task.token}/"
    put = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 3}}, content_type="application/json")
    assert put.status_code == 200 and put.json() == {"scores": {"A": {"noise": 3}}}
    bad = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 9}}, content_type="application/json")
    assert bad.status_code == 400 and "1 to 5" in bad.json()["detail"]
    unknown = client.put(url + "scores/", {"panel": "A", "scores": {"zzz": 1}}, content_type="application/json")
    assert unknown.status_code == 400 and "Unknown item" in unknown.json()["detail"]
    incomplete = client.post(url + "submit/", {"scores": {"A": {"noise": 3}}, "seconds_on_task": 5},
                             content_type="application/json")
    assert incomplete.status_code == 400 and "A.overall_quality" in incomplete.json()["missing"]
    done = client.post(url + "submit/", {"scores": {"A": ALL_FOURS}, "seconds_on_task": 7.5},
                       content_type="application/json")
    assert done.status_code == 200
    second = reading.reader_tasks(reader).get(position=2)
    assert done.json() == {"next_url": f"/reading/task/{second.token}/", "submitted": True}
    again = client.post(url + "submit/", {"scores": {"A": ALL_FOURS}, "seconds_on_task": 7.5},
                        content_type="application/json")
    assert again.json() == done.json()
    resume = client.get(f"/reading/study/{world.study.token}/resume/")
    assert resume.status_code == 302 and resume["Location"] == f"/reading/task/{second.token}/"
    assert client.get(url).json()["scores"] == {"A": ALL_FOURS}


def test_a_finished_study_is_offered_for_read_only_review_not_resumed_for_editing(client, world):
    """Issue 12, defect 3: after the last task the worklist offered "Resume", which reopened a submitted task for
    editing. Now it offers a read-only review from the first image, and the server keeps the scores as submitted."""
    reader = world.readers[0]
    client.force_login(reader)
    tasks = list(reading.reader_tasks(reader).filter(study=world.study).order_by("position"))
    worklist = reverse("reading:worklist")
    assert ">Start<" in client.get(worklist).content.decode()
    for task in tasks[:-1]:
        reading.submit(reader, task, {"A": ALL_FOURS}, 2.0)
    html = client.get(worklist).content.decode()
    assert ">Resume<" in html and "Review" not in html
    last = f"/api/reading/tasks/{tasks[-1].token}/"
    assert client.get(last).json()["review"] is False
    assert client.put(last + "scores/", {"panel": "A", "scores": {"noise": 2}},
                      content_type="application/json").status_code == 200
    assert client.post(last + "submit/", {"scores": {"A": ALL_FOURS}, "seconds_on_task": 3},
                       content_type="application/json").status_code == 200

    html = client.get(worklist).content.decode()
    assert "Review (read-only)" in html and ">Resume<" not in html
    resume = client.get(f"/reading/study/{world.study.token}/resume/")
    assert resume["Location"] == f"/reading/task/{tasks[0].token}/"  # the review starts at the first image
    first = f"/api/reading/tasks/{tasks[0].token}/"
    body = client.get(first).json()
    assert (body["review"], body["submitted"], body["locked"]) == (True, True, False)

    audits = ScoreAudit.objects.count()
    for url in (first, last):
        put = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 1}}, content_type="application/json")
        assert put.status_code == 409 and "read-only" in put.json()["detail"]
        changed = client.post(url + "submit/", {"scores": {"A": {**ALL_FOURS, "noise": 1}}, "seconds_on_task": 3},
                              content_type="application/json")
        assert changed.status_code == 409 and "read-only" in changed.json()["detail"]
        same = client.post(url + "submit/", {"scores": {"A": ALL_FOURS}, "seconds_on_task": 3},
                           content_type="application/json")
        assert same.status_code == 200  # re-sending what was submitted stays idempotent
    assert ScoreAudit.objects.count() == audits
    assert set(Score.objects.filter(task__in=tasks).values_list("value", flat=True)) == {4}


def test_locked_study_answers_409_and_says_locked(client, world):
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    world.study.status = StudyStatus.LOCKED
    world.study.save()
    url = f"/api/reading/tasks/{task.token}/"
    assert client.get(url).json()["locked"] is True
    response = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 3}}, content_type="application/json")
    assert response.status_code == 409


def test_reading_page_mounts_the_bundle_or_explains_its_absence(client, world, monkeypatch):
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    from apps.studies import views

    monkeypatch.setattr(views, "_static_exists", lambda path: True)
    html = client.get(f"/reading/task/{task.token}/").content.decode()
    assert f'data-task-url="/api/reading/tasks/{task.token}/"' in html
    assert 'data-csrf-token="' in html
    assert '<script type="module" src="/static/reader/reading.js"></script>' in html
    monkeypatch.setattr(views, "_static_exists", lambda path: False)
    html = client.get(f"/reading/task/{task.token}/").content.decode()
    assert "reading.js" not in html and "viewer is not installed" in html


def test_worklist_shows_progress_per_sequence(client, world):
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    reading.submit(reader, task, {"A": ALL_FOURS}, 2.0)
    html = client.get(reverse("reading:worklist")).content.decode()
    total = reading.reader_tasks(reader).count()
    assert f"1 / {total} done" in html
    assert "T2-weighted" in html and "T2 FLAIR" in html
    assert f"/reading/study/{world.study.token}/resume/" in html


def test_paired_task_has_two_panels_and_calibration_scores_url_after_submit(client, db):
    paired = build_world(mode="paired", calibration=1)
    reader = paired.readers[1]
    client.force_login(reader)
    task = first_task(paired, reader)
    url = f"/api/reading/tasks/{task.token}/"
    body = client.get(url).json()
    assert body["mode"] == "paired" and body["calibration"] is True
    assert [p["panel"] for p in body["panels"]] == ["A", "B"]
    client.post(url + "submit/", {"scores": {"A": ALL_FOURS, "B": ALL_FOURS}, "seconds_on_task": 3},
                content_type="application/json")
    body = client.get(url).json()
    assert body["calibration_scores_url"] == f"/api/reading/tasks/{task.token}/calibration-scores/"
    others = client.get(body["calibration_scores_url"]).json()
    assert set(others) == {"scores", "others", "median"}


def test_admin_api_defines_generates_opens_locks_and_exports(client, db):
    source = build_world()
    admin = AdminFactory()
    client.force_login(admin)
    created = client.post("/api/reading/studies/", {"title": "Second", "mode": "paired", "readers_per_case": 1},
                          content_type="application/json")
    assert created.status_code == 201, created.content
    study_id = created.json()["id"]
    assert len(created.json()["items"]) == 7
    base = f"/api/reading/studies/{study_id}/"
    items = [{"key": "overall_quality", "label": "Overall", "anchors": list("12345")}]
    assert client.put(base + "items/", items, content_type="application/json").status_code == 200
    readers = [r.pk for r in source.readers]
    assert client.put(base + "readers/", {"readers": readers}, content_type="application/json").status_code == 200
    cases = {"cases": [c.pk for c in source.cases], "calibration_cases": [source.cases[0].pk]}
    assert client.put(base + "cases/", cases, content_type="application/json").status_code == 200
    generated = client.post(base + "generate/")
    assert generated.status_code == 200 and generated.json()["tasks"] > 0
    assert client.post(base + "open/").json()["status"] == "reading"
    assert client.post(base + "generate/").status_code == 409
    progress = client.get(base + "progress/").json()
    assert {p["label"] for p in progress["readers"]} == {r.pseudonym for r in source.readers}
    rows = list(csv.DictReader(io.StringIO(client.get(base + "assignment.csv/").content.decode())))
    assert len(rows) == generated.json()["tasks"] and rows[0]["left_version"] in {"conventional", "dl"}
    assert len(client.get(base + "assignment/").json()) == len(rows)
    assert client.post(base + "lock/").json()["status"] == "locked"


def test_admin_api_reports_unsatisfiable_rules(client, db):
    source = build_world()
    client.force_login(AdminFactory())
    study_id = client.post("/api/reading/studies/", {"title": "Too many", "readers_per_case": 3},
                           content_type="application/json").json()["id"]
    base = f"/api/reading/studies/{study_id}/"
    client.put(base + "readers/", {"readers": [r.pk for r in source.readers]}, content_type="application/json")
    client.put(base + "cases/", {"cases": [c.pk for c in source.cases]}, content_type="application/json")
    response = client.post(base + "generate/")
    assert response.status_code == 400 and "only 2 are eligible" in response.json()["detail"]
