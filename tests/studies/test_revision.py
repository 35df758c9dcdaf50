"""Audited revise (issue 12, defect 3): where a study allows it, a reader who has finished reopens a submitted image
with an explicit Revise, recorded with who, which task and when, and each score change keeps its old and new
value; without the setting the review stays read-only (409) and nothing is recorded."""

import pytest
from auditlog.models import LogEntry

from apps.studies.models import DEFAULT_ITEMS, ScoreAudit, TaskRevision
from apps.studies.services import reading
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

ALL_THREES = {key: 3 for key, _, _ in DEFAULT_ITEMS}


def api(task) -> str:
    return f"/api/reading/tasks/{task.token}/"


def finish(client, reader, study) -> list:
    """The reader submits every task of the study, all items 3; returns the tasks in order."""
    client.force_login(reader)
    tasks = list(reading.reader_tasks(reader).filter(study=study).order_by("position"))
    for task in tasks:
        body = {"scores": {p: ALL_THREES for p in reading.panels_of(task)}, "seconds_on_task": 5}
        assert client.post(api(task) + "submit/", body, content_type="application/json").status_code == 200
    return tasks


def put(client, task, value: int):
    return client.put(api(task) + "scores/", {"panel": "A", "scores": {"noise": value}},
                      content_type="application/json")


def test_without_the_setting_the_review_stays_read_only_and_revise_is_refused(client):
    world = build_world(cases_per_site=1, sequences=("T2W",))
    reader = world.readers[0]
    first, *_ = finish(client, reader, world.study)
    body = client.get(api(first)).json()
    assert body["review"] is True and body["revisable"] is False
    refused = client.post(api(first) + "revise/")
    assert refused.status_code == 409 and "does not allow revising" in refused.json()["detail"]
    assert put(client, first, 5).status_code == 409
    assert not TaskRevision.objects.exists()


def test_revise_is_recorded_the_changes_keep_old_and_new_and_the_submit_closes_it(client):
    world = build_world(cases_per_site=1, sequences=("T2W",), allow_revision=True)
    reader = world.readers[0]
    client.force_login(reader)
    first = reading.reader_tasks(reader).filter(study=world.study).order_by("position").first()
    early = client.post(api(first) + "revise/")  # not finished yet: nothing to revise
    assert early.status_code == 409 and "can be changed as it is" in early.json()["detail"]

    first, *_ = finish(client, reader, world.study)
    body = client.get(api(first)).json()
    assert body["review"] is True and body["revisable"] is True
    assert put(client, first, 5).status_code == 409  # still read-only until the explicit step

    opened = client.post(api(first) + "revise/")
    assert opened.status_code == 200
    assert opened.json()["review"] is False and opened.json()["revising"] is True
    assert client.post(api(first) + "revise/").status_code == 200  # idempotent while open
    revision = TaskRevision.objects.get()
    assert (revision.task, revision.reader, revision.submitted_at) == (first, reader, None)
    assert LogEntry.objects.get_for_object(revision).filter(action=LogEntry.Action.CREATE).count() == 1

    assert put(client, first, 5).status_code == 200
    change = ScoreAudit.objects.filter(score__task=first, score__item__key="noise").order_by("changed_at").last()
    assert (change.old_value, change.new_value, change.changed_by) == (3, 5, reader)
    assert change.changed_at >= revision.opened_at

    body = {"scores": {"A": {**ALL_THREES, "noise": 5}}, "seconds_on_task": 7}
    assert client.post(api(first) + "submit/", body, content_type="application/json").status_code == 200
    revision.refresh_from_db()
    assert revision.submitted_at is not None and revision.submitted_at >= revision.opened_at
    after = client.get(api(first)).json()
    assert after["review"] is True and after["revising"] is False  # read-only again
    assert put(client, first, 4).status_code == 409


def test_another_readers_task_cannot_be_revised(client):
    world = build_world(cases_per_site=1, sequences=("T2W",), allow_revision=True)
    theirs, *_ = finish(client, world.readers[1], world.study)
    client.force_login(world.readers[0])
    assert client.post(api(theirs) + "revise/").status_code == 404
    assert not TaskRevision.objects.exists()
