"""Window presets per study (issue 12, item 2): an admin sets F2/F3 per sequence while the study is a draft, every
reader of the study gets them with its tasks (F1 stays the stored window), and bad input is refused with a reason."""

import pytest
from django.core.exceptions import ValidationError

from apps.studies.models import ReaderStudy
from tests.factories import AdminFactory, ReaderStudyFactory
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

PRESETS = {"T2W": [{"key": "F3", "name": " Wide CSF ", "width": 1.8, "level": 0.1},
                   {"key": "F2", "name": "Lesion edge", "width": 0.5, "level": 0.2}]}


def patch(client, study, body):
    return client.patch(f"/api/reading/studies/{study.pk}/", body, content_type="application/json")


def test_an_admin_sets_the_presets_of_a_draft_and_every_reader_gets_them(client):
    study = ReaderStudyFactory(sequences=["T2W", "FLAIR"])
    client.force_login(AdminFactory())
    answer = patch(client, study, {"window_presets": PRESETS})
    assert answer.status_code == 200, answer.content
    assert answer.json()["window_presets"] == PRESETS
    assert ReaderStudy.objects.get(pk=study.pk).window_presets == PRESETS

    world = build_world(window_presets=PRESETS, sequences=("T2W", "FLAIR"))
    seen = {}
    for reader in world.readers:
        client.force_login(reader)
        for task in world.study.tasks.filter(reader=reader):
            body = client.get(f"/api/reading/tasks/{task.token}/").json()
            seen.setdefault(task.sequence, []).append(body["window_presets"])
    expected = [{"key": "F1", "name": "Stored", "width": 1.0, "level": 0.0},
                {"key": "F2", "name": "Lesion edge", "width": 0.5, "level": 0.2},
                {"key": "F3", "name": "Wide CSF", "width": 1.8, "level": 0.1}]
    assert seen["T2W"] and all(p == expected for p in seen["T2W"])  # every reader, either version: the same
    assert seen["FLAIR"] and all(p is None for p in seen["FLAIR"])  # not set: the page's built-in presets


@pytest.mark.parametrize("presets, reason", [
    ("T2W", "an object with one list of presets per sequence"),
    ({"PD": [{"key": "F2", "name": "x", "width": 1, "level": 0}]}, "Unknown sequence 'PD'"),
    ({"T2W": []}, "a list of 1 to 2 presets"),
    ({"T2W": [{"key": "F1", "name": "x", "width": 1, "level": 0}]}, "key must be F2 or F3"),
    ({"T2W": [{"key": "F2", "name": "x", "width": 9, "level": 0}]}, "width must lie between 0.05 and 5.0"),
    ({"T2W": [{"key": "F2", "name": "x", "width": True, "level": 0}]}, "width must be a number"),
    ({"T2W": [{"key": "F2", "name": "x", "width": 1, "level": "0"}]}, "level must be a number"),
    ({"T2W": [{"key": "F2", "name": "x", "width": 1, "level": -1.5}]}, "level must lie between -1.0 and 1.0"),
    ({"T2W": [{"key": "F2", "name": "x" * 41, "width": 1, "level": 0}]}, "name must be printable text"),
    ({"T2W": [{"key": "F2", "name": "a\nb", "width": 1, "level": 0}]}, "name must be printable text"),
    ({"T2W": [{"key": "F2", "name": "x", "width": 1}]}, "exactly the fields key, level, name, width"),
    ({"T2W": [{"key": "F2", "name": "x", "width": 1, "level": 0}] * 2}, "each key once"),
])
def test_bad_presets_are_refused_with_the_reason_and_nothing_is_stored(client, presets, reason):
    study = ReaderStudyFactory(sequences=["T2W"])
    client.force_login(AdminFactory())
    answer = patch(client, study, {"window_presets": presets})
    assert answer.status_code == 400
    assert reason in str(answer.json())
    assert ReaderStudy.objects.get(pk=study.pk).window_presets == {}
    study.window_presets = presets  # the admin's form runs the same validation (full_clean)
    with pytest.raises(ValidationError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        study.full_clean()


def test_the_presets_are_fixed_once_the_study_is_open(client):
    world = build_world(window_presets=PRESETS)
    client.force_login(AdminFactory())
    answer = patch(client, world.study, {"window_presets": {}})
    assert answer.status_code == 409 and "draft" in answer.json()["detail"]
    assert ReaderStudy.objects.get(pk=world.study.pk).window_presets == PRESETS
