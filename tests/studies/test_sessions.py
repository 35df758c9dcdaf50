"""Reading sessions with washout (issue 14, item 4): the planner's counterbalanced split, the study settings that
are refused, the server refusing a session that has not opened (clock moved with time-machine), the session-1
review that no longer changes, and the exports' session and version order."""

import csv
import io
import random
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.studies import assignment as planner
from apps.studies.models import DEFAULT_ITEMS, ReaderStudy, ReadingTask, TaskStatus
from apps.studies.services import definition, reading
from tests.factories import AdminFactory
from tests.studies.conftest import build_world

ALL_FOURS = {key: 4 for key, _, _ in DEFAULT_ITEMS}
WASHOUT = 14


def counterbalance(tasks: list[planner.PlannedTask]) -> dict[str, Counter]:
    """Per sequence, how many images the reader gets conventional first (in session 1) and DL first."""
    counts: dict[str, Counter] = {}
    for task in tasks:
        if task.session == 1 and not task.calibration:
            counts.setdefault(task.sequence, Counter())[task.version] += 1
    return counts


@pytest.mark.parametrize("seed", range(12))
def test_each_readers_images_split_over_two_sessions_half_conventional_first(seed):
    rng = random.Random(seed)
    sequences = ("T2W", "FLAIR", "T1W_POST")
    cases = [planner.CaseInput(f"S{site}-{n:02d}", f"site{site}", tuple(rng.sample(sequences, rng.randint(1, 3))))
             for site in range(3) for n in range(rng.randint(3, 9))]
    readers = [planner.ReaderInput(f"r{i}", f"site{i % 3}") for i in range(5)]
    rules = planner.Rules(mode="single", readers_per_case=2, min_distance=1, sessions=2,
                          calibration_cases=(cases[0].key, cases[-1].key))
    plan = planner.generate_assignment(seed, cases, readers, rules)
    for reader, tasks in plan.items():
        calibration = [t for t in tasks if t.calibration]
        main = [t for t in tasks if not t.calibration]
        assert all(t.session == 1 for t in calibration), "calibration is read first, in session 1"
        assert tasks[: len(calibration)] == calibration
        # Session 1, then session 2; each image once per session, the other version in session 2.
        assert [t.session for t in main] == sorted(t.session for t in main)
        first = {(t.case, t.sequence): t.version for t in main if t.session == 1}
        second = {(t.case, t.sequence): t.version for t in main if t.session == 2}
        assert len(first) == len(second) == len(main) // 2 and first.keys() == second.keys()
        assert all({first[image], second[image]} == {"conventional", "dl"} for image in first)
        # Counterbalanced: half of the reader's images conventional first, per sequence and overall (to one image).
        per_sequence = counterbalance(tasks)
        assert all(abs(c["conventional"] - c["dl"]) <= 1 for c in per_sequence.values()), (reader, per_sequence)
        overall = sum(per_sequence.values(), Counter())
        assert abs(overall["conventional"] - overall["dl"]) <= 1, (reader, overall)


def test_which_images_come_conventional_first_depends_on_the_seed_and_sessions_refuse_what_they_cannot_mean():
    cases = [planner.CaseInput(f"C{n}", "a", ("T2W",)) for n in range(10)]
    readers = [planner.ReaderInput("r", "b")]
    rules = planner.Rules(mode="single", readers_per_case=1, sessions=2)
    firsts = {
        frozenset(t.case for t in planner.generate_assignment(seed, cases, readers, rules)["r"]
                  if t.session == 1 and t.version == "conventional")
        for seed in range(8)
    }
    assert len(firsts) > 4 and all(len(f) == 5 for f in firsts)
    with pytest.raises(ValueError, match="Only single mode is read in sessions"):
        planner.generate_assignment(1, cases, readers, planner.Rules(mode="paired", readers_per_case=1, sessions=2))
    with pytest.raises(ValueError, match="1 or 2 sessions, not 3"):
        planner.generate_assignment(1, cases, readers, planner.Rules(readers_per_case=1, sessions=3))
    existing = planner.generate_assignment(1, cases[:5], readers, rules)
    with pytest.raises(ValueError, match="appended images would come after the second session"):
        planner.generate_assignment(1, cases, readers, rules, existing=existing)


@pytest.mark.django_db
def test_impossible_session_settings_are_refused_with_a_reason_and_fixed_once_reading_has_begun(client):
    admin = AdminFactory()
    client.force_login(admin)
    refused = {
        (("mode", "paired"), ("sessions", 2)): "paired mode shows side by side",
        (("sessions", 2), ("washout_days", -3)): "cannot be negative (-3 days)",
        (("sessions", 3),): "3 sessions have no meaning",
        (("sessions", 0),): "0 sessions have no meaning",
        (("washout_days", 7),): "A washout separates two sessions",
        (("sessions", 2), ("washout_days", 400)): "more than the 365 days allowed",
    }
    for fields, reason in refused.items():
        answer = client.post("/api/reading/studies/", {"title": "Sessions", **dict(fields)},
                             content_type="application/json")
        assert answer.status_code == 400, (fields, answer.content)
        assert reason in str(answer.json()), (fields, answer.json())
        with pytest.raises(ValidationError, match="session"):
            ReaderStudy(title="x", **dict(fields)).full_clean()
    assert not ReaderStudy.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database itself refuses them
        ReaderStudy.objects.create(title="x", mode="paired", sessions=2)

    created = client.post("/api/reading/studies/", {"title": "Sessions", "sessions": 2, "washout_days": WASHOUT},
                          content_type="application/json")
    assert created.status_code == 201, created.content
    assert (created.json()["sessions"], created.json()["washout_days"]) == (2, WASHOUT)
    study = ReaderStudy.objects.get()
    patched = client.patch(f"/api/reading/studies/{study.pk}/", {"mode": "paired"}, content_type="application/json")
    assert patched.status_code == 400 and "read a paired study in 1 session" in patched.json()["sessions"][0]

    world = build_world(sessions=2, washout_days=WASHOUT)
    answer = client.patch(f"/api/reading/studies/{world.study.pk}/", {"washout_days": 1},
                          content_type="application/json")
    assert answer.status_code == 409
    assert "cannot change once reading has begun" in answer.json()["detail"]
    assert "2 sessions with a washout of 14 days" in answer.json()["detail"]
    with pytest.raises(definition.StudyStateError, match="cannot change once reading has begun"):
        definition.require_sessions_changeable(world.study)


def submit_all(client, tasks) -> dict:
    body = {}
    for task in tasks:
        answer = client.post(f"/api/reading/tasks/{task.token}/submit/", {"scores": {"A": ALL_FOURS},
                             "seconds_on_task": 3}, content_type="application/json")
        assert answer.status_code == 200, answer.content
        body = answer.json()
    return body


@pytest.mark.django_db
def test_a_locked_session_is_refused_by_the_server_until_the_washout_after_session_1_has_passed(client):
    world = build_world(sessions=2, washout_days=WASHOUT, calibration=3)
    reader = world.readers[0]
    client.force_login(reader)
    tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))
    first = [t for t in tasks if t.session == 1]
    second = [t for t in tasks if t.session == 2]
    assert first and second and tasks == first + second
    assert definition.rederive(world.study) == definition._existing_plan(world.study)
    # Session 2 shows the other version of each main image of session 1; calibration stays in session 1.
    shown = {(t.case_id, t.sequence): t.version for t in first if not t.calibration}
    assert {(t.case_id, t.sequence): t.version for t in second}.keys() == shown.keys()
    assert all(shown[(t.case_id, t.sequence)] != t.version for t in second)

    def refused(task, now_text=None):
        api = f"/api/reading/tasks/{task.token}/"
        for answer in (client.get(api), client.post(api + "open/"),
                       client.put(api + "scores/", {"panel": "A", "scores": {"noise": 3}},
                                  content_type="application/json"),
                       client.post(api + "submit/", {"scores": {"A": ALL_FOURS}, "seconds_on_task": 2},
                                   content_type="application/json")):
            assert answer.status_code == 403, answer.content
            assert answer.json()["detail"].startswith("Session 2 of 2 opens")
            if now_text:
                assert now_text in answer.json()["detail"]
        page = client.get(f"/reading/task/{task.token}/")
        assert page.status_code == 403 and b"Session 2 of 2 opens" in page.content
        image = task.panels.get().image_token
        assert client.get(f"/reading/img/{image}/0.dcm").status_code == 404
        task.refresh_from_db()
        assert (task.status, task.started_at, task.scores.count()) == (TaskStatus.PENDING, None, 0)

    refused(second[0])
    assert "opens 14 days after you finish session 1" in client.get(f"/api/reading/tasks/{second[0].token}/").json()[
        "detail"]
    last = submit_all(client, first[:-1])
    payload = client.get(f"/api/reading/tasks/{first[-1].token}/").json()
    assert payload["session"] == {"number": 1, "of": 2}
    assert payload["next_url"] is None and payload["next_task_api"] is None, "session 1 ends the reading page"
    last = submit_all(client, first[-1:])
    ended = ReadingTask.objects.get(pk=first[-1].pk).submitted_at
    opens = ended + timedelta(days=WASHOUT)
    assert last["next_url"] is None
    assert last["waiting"] == ("You have finished session 1 of 2. Session 2 of 2 opens on "
                               f"{reading.opening_text(opens)}, 14 days after your session 1 ended.")
    refused(second[0], reading.opening_text(opens))
    assert client.get(f"/reading/study/{world.study.token}/resume/").status_code == 403
    # Session 1 is over: its scores stay as submitted (seeing the other versions must not change them).
    changed = client.put(f"/api/reading/tasks/{first[3].token}/scores/", {"panel": "A", "scores": {"noise": 1}},
                         content_type="application/json")
    assert changed.status_code == 409 and "this reading session" in changed.json()["detail"]
    worklist = client.get("/reading/").content.decode()
    assert "Session 2 of 2 opens on" in worklist and reading.opening_text(opens) in worklist
    assert 'data-session="2" data-open="false"' in worklist and "Resume" not in worklist

    # Two weeks on, the reader logs in again (a login lasts 12 hours).
    with time_machine.travel(opens - timedelta(minutes=1)):
        client.force_login(reader)
        refused(second[-1])
    with time_machine.travel(opens + timedelta(minutes=1)):
        client.force_login(reader)
        api = f"/api/reading/tasks/{second[0].token}/"
        body = client.get(api).json()
        assert body["session"] == {"number": 2, "of": 2} and not body["review"]
        assert client.get(body["panels"][0]["image_urls"][0]).status_code == 200
        resumed = client.get(f"/reading/study/{world.study.token}/resume/")
        assert resumed.status_code == 302 and resumed.url == f"/reading/task/{second[0].token}/"
        assert 'data-session="2" data-open="true"' in client.get("/reading/").content.decode()
        submit_all(client, second)
    assert all(t.status == TaskStatus.SUBMITTED for t in ReadingTask.objects.filter(reader=reader, study=world.study))


@pytest.mark.django_db
def test_exports_carry_each_tasks_session_and_which_version_the_reader_was_given_first(client):
    world = build_world(sessions=2, washout_days=0)
    reader = world.readers[1]
    client.force_login(reader)
    tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))
    submit_all(client, tasks)  # washout 0: session 2 opens as session 1 ends
    client.force_login(AdminFactory())
    first_version = {(t.case.code, t.sequence): t.version for t in tasks if t.session == 1}
    for kind in ("long", "wide", "assignment", "score_audit"):
        content = b"".join(client.get(f"/api/analysis/studies/{world.study.pk}/exports/{kind}/").streaming_content)
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        assert list(rows[0])[-2:] == ["session", "version_order"], kind
        mine = [r for r in rows if r["reader"] == reader.pseudonym]
        assert mine and {r["session"] for r in mine} == {"1", "2"}, kind
        case, position = ("case", "position") if kind == "assignment" else ("case_id", "task_position")
        for row in mine:
            task = tasks[int(row[position]) - 1]
            assert row["session"] == str(task.session), (kind, row)
            assert row["version_order"] == f"{first_version[(row[case], row['sequence'])]}_first", (kind, row)
        orders = Counter(r["version_order"] for r in rows if r.get("calibration") != "TRUE")
        assert set(orders) == {"conventional_first", "dl_first"}, (kind, orders)


@pytest.mark.django_db
def test_paired_mode_keeps_one_session_and_exports_no_version_order(client):
    world = build_world(mode="paired")
    reader = world.readers[0]
    client.force_login(reader)
    tasks = list(ReadingTask.objects.filter(study=world.study, reader=reader).order_by("position"))
    assert {t.session for t in tasks} == {1}
    body = client.post(f"/api/reading/tasks/{tasks[0].token}/submit/", {"scores": {p: ALL_FOURS for p in "AB"},
                       "seconds_on_task": 3}, content_type="application/json").json()
    assert "waiting" not in body
    assert client.get(f"/api/reading/tasks/{tasks[0].token}/").json()["next_url"] == f"/reading/task/{tasks[1].token}/"
    assert "<table class=\"worklist-sessions\">" not in client.get("/reading/").content.decode()
    client.force_login(AdminFactory())
    content = b"".join(client.get(f"/api/analysis/studies/{world.study.pk}/exports/long/").streaming_content)
    header, *lines = content.decode().splitlines()
    assert header.endswith(",session,version_order") and len(lines) == 2 * len(DEFAULT_ITEMS)
    assert all(line.endswith(",1,NA") for line in lines)
