"""After a study is locked nothing a reader does changes its reading data: opening a task (page or API), autosave,
submit, ROIs. Driven through a real login and the HTTP API; the admin's exports and the rows behind them are compared
before and after."""

import pytest

from apps.analysis import exports
from apps.analysis.models import RoiMeasurement
from apps.studies.models import DEFAULT_ITEMS, ReadingTask, Score, ScoreAudit, StudyStatus, TaskStatus
from apps.studies.services import reading
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ALL_FOURS = {key: 4 for key, _, _ in DEFAULT_ITEMS}


def snapshot(study) -> dict:
    """Every export of the study as the admin downloads it, and every row of reading data behind them."""
    return {
        "exports": {kind: "".join(exports.stream_csv(study, kind)) for kind in exports.CSV_EXPORTS},
        "tasks": list(ReadingTask.objects.filter(study=study).order_by("pk").values()),
        "scores": list(Score.objects.filter(task__study=study).order_by("pk").values()),
        "audit": list(ScoreAudit.objects.filter(score__task__study=study).order_by("pk").values()),
        "rois": list(RoiMeasurement.objects.filter(study=study).order_by("pk").values()),
    }


def test_nothing_a_reader_does_changes_a_locked_study(client, world):
    reader = world.readers[0]
    assert client.post("/accounts/login/", {"username": reader.username, "password": PASSWORD}).status_code == 302
    tasks = list(reading.reader_tasks(reader).filter(study=world.study).order_by("position"))
    done, started, untouched = tasks[0], tasks[1], tasks[2]
    api = "/api/reading/tasks/{}/"
    assert client.post(api.format(done.token) + "submit/", {"scores": {"A": ALL_FOURS}, "seconds_on_task": 9},
                       content_type="application/json").status_code == 200
    assert client.put(api.format(started.token) + "scores/", {"panel": "A", "scores": {"noise": 2}},
                      content_type="application/json").status_code == 200
    assert ReadingTask.objects.get(pk=untouched.pk).status == TaskStatus.PENDING

    world.study.status = StudyStatus.LOCKED
    world.study.save()
    before = snapshot(world.study)
    assert "pending" in before["exports"]["wide"]

    for task in tasks:
        assert client.get(f"/reading/task/{task.token}/").status_code == 200
        body = client.get(api.format(task.token)).json()
        assert body["locked"] is True
        assert client.post(api.format(task.token) + "open/").status_code == 200
        assert client.get(f"/reading/study/{world.study.token}/resume/").status_code == 302
        for panel in body["panels"]:
            assert client.get(panel["image_urls"][0]).status_code == 200
        autosave = client.put(api.format(task.token) + "scores/", {"panel": "A", "scores": {"noise": 5}},
                              content_type="application/json")
        assert autosave.status_code == 409 and "locked" in autosave.json()["detail"]
        submit = client.post(api.format(task.token) + "submit/", {"scores": {"A": {**ALL_FOURS, "noise": 1}},
                                                                  "seconds_on_task": 3},
                             content_type="application/json")
        assert submit.status_code == 409 and "locked" in submit.json()["detail"]
        roi = client.post(f"/api/analysis/rois/{task.token}/",
                          {"label": "S1", "slice_index": 0, "center_row": 8, "center_col": 8,
                           "radius_rows": 2, "radius_cols": 2}, content_type="application/json")
        assert roi.status_code in (400, 409) and "locked" in roi.json()["detail"]
        assert client.delete(f"/api/analysis/rois/{task.token}/S1/").status_code in (400, 404, 409)

    after = snapshot(world.study)
    assert after["tasks"] == before["tasks"], "opening a task of a locked study changed it"
    assert after == before
    assert ReadingTask.objects.get(pk=untouched.pk).started_at is None
