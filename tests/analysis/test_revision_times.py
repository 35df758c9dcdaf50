"""Creation and update times of scores and ROIs come from one clock: created == updated when a row is made,
updated >= created always (checked by the database), so revision times in the exports are never negative."""

from __future__ import annotations

import io
from datetime import timedelta

import pandas as pd
import pytest
from django.db import IntegrityError, transaction

from apps.analysis.models import RoiMeasurement
from apps.studies.models import DEFAULT_ITEMS, ReadingTask, Score, ScoreAudit
from tests.analysis.test_rois import measured_world, post_roi  # noqa: F401 (fixture)
from tests.factories import AdminFactory
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

ALL_THREES = {key: 3 for key, _, _ in DEFAULT_ITEMS}


def export(client, study, kind: str) -> pd.DataFrame:
    response = client.get(f"/analysis/studies/{study.pk}/exports/{kind}.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    return pd.read_csv(io.StringIO(text))


def test_reader_submits_and_revises_through_the_api_and_revision_times_are_never_negative(client) -> None:
    world = build_world()
    reader = world.readers[0]
    client.force_login(reader)
    tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))[:3]
    for task in tasks:
        url = f"/api/reading/tasks/{task.token}/"
        assert client.get(url).status_code == 200
        put = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 2}}, content_type="application/json")
        assert put.status_code == 200
        done = client.post(url + "submit/", {"scores": {"A": ALL_THREES}, "seconds_on_task": 20},
                           content_type="application/json")
        assert done.status_code == 200, done.content
    revised = tasks[0]
    again = client.post(f"/api/reading/tasks/{revised.token}/submit/",
                        {"scores": {"A": {**ALL_THREES, "noise": 5}}, "seconds_on_task": 7},
                        content_type="application/json")
    assert again.status_code == 200, again.content

    client.force_login(AdminFactory())
    frame = export(client, world.study, "long")
    assert len(frame) == 3 * len(DEFAULT_ITEMS)
    created = pd.to_datetime(frame["created_at"])
    updated = pd.to_datetime(frame["updated_at"])
    revision = (updated - created).dt.total_seconds()
    assert (revision >= 0).all(), frame[revision < 0][["task_position", "item", "created_at", "updated_at"]]
    is_revised = (frame["task_position"] == revised.position) & (frame["item"].isin(["noise"]))
    # "noise" was autosaved as 2, submitted as 3, revised to 5: a real revision, later than the first save.
    assert (revision[is_revised] > 0).all()
    # Every other score was saved once (by the submit) and never changed: created and updated are the same instant.
    untouched = frame["item"] != "noise"
    assert (revision[untouched] == 0).all(), frame[untouched & (revision != 0)][["created_at", "updated_at"]]

    # The audit trail tells the same times: the first change is the creation, the last one the latest update.
    audit = export(client, world.study, "score_audit")
    for score in Score.objects.filter(task__study=world.study):
        changes = list(ScoreAudit.objects.filter(score=score).order_by("changed_at", "pk"))
        assert changes[0].changed_at == score.created_at
        assert changes[-1].changed_at == score.updated_at
    assert len(audit) == ScoreAudit.objects.filter(score__task__study=world.study).count()


def test_database_refuses_an_update_time_before_the_creation_time() -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)  # every reader has tasks
    reader = world.readers[0]
    task = ReadingTask.objects.filter(study=world.study, reader=reader).first()
    from apps.studies.services import reading

    reading.submit(reader, task, {"A": ALL_THREES}, 10)
    score = Score.objects.filter(task=task).first()
    assert score.created_at == score.updated_at
    with pytest.raises(IntegrityError), transaction.atomic():
        Score.objects.filter(pk=score.pk).update(updated_at=score.created_at - timedelta(microseconds=1))


def test_roi_created_and_updated_times_from_one_clock(client, measured_world) -> None:  # noqa: F811
    task = measured_world.task
    client.force_login(task.reader)
    assert post_roi(client, task).status_code == 201
    roi = RoiMeasurement.objects.get()
    assert roi.created_at == roi.updated_at
    assert post_roi(client, task, center_row=3.0).status_code == 201
    redrawn = RoiMeasurement.objects.get()
    assert redrawn.created_at == roi.created_at and redrawn.updated_at > redrawn.created_at
    with pytest.raises(IntegrityError), transaction.atomic():
        RoiMeasurement.objects.filter(pk=roi.pk).update(updated_at=roi.created_at - timedelta(microseconds=1))


@pytest.mark.django_db(transaction=True)
def test_migration_repairs_existing_rows_before_adding_the_checks() -> None:
    """Rows written by the old code (audit entry after the score row, updated_at before it) are repaired."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from apps.studies.services import reading

    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)  # every reader has tasks
    reader = world.readers[0]
    tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))[:2]
    for task in tasks:
        reading.submit(reader, task, {"A": ALL_THREES}, 10)
    reading.submit(reader, tasks[0], {"A": {**ALL_THREES, "noise": 5}}, 3)
    revised = Score.objects.get(task=tasks[0], item__key="noise")
    untouched = Score.objects.get(task=tasks[1], item__key="noise")
    before = {s.pk: (s.created_at, s.updated_at) for s in (revised, untouched)}

    old = [("studies", "0002_taskpanel_window_on_series"), ("analysis", "0003_export_kind_score_audit")]
    executor = MigrationExecutor(connection)
    executor.migrate(old)
    with connection.cursor() as cursor:  # what the old code left: the audit entry a little after the row
        cursor.execute("UPDATE studies_scoreaudit SET changed_at = %s WHERE score_id = %s AND old_value IS NULL",
                       [before[untouched.pk][0] + timedelta(microseconds=40), untouched.pk])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    revised.refresh_from_db()
    untouched.refresh_from_db()
    assert untouched.created_at == untouched.updated_at == before[untouched.pk][1]
    assert revised.created_at == before[revised.pk][0] < revised.updated_at == before[revised.pk][1]
