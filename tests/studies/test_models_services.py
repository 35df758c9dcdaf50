"""Study services: stored assignment, regeneration rule, appending, export rows, scoring and its audit."""

import pytest
from django.db import IntegrityError

from apps.studies.models import DEFAULT_ITEMS, ReadingTask, Score, ScoreAudit, TaskStatus
from apps.studies.services import definition, progress, reading
from tests.factories import ReaderStudyFactory
from tests.studies.conftest import build_world, image_pair

pytestmark = pytest.mark.django_db

ALL_FIVES = {key: 5 for key, _, _ in DEFAULT_ITEMS}


def test_new_study_has_the_seven_default_items_with_five_anchors():
    study = definition.create_study("x")
    assert [i.key for i in study.items.all()] == [k for k, _, _ in DEFAULT_ITEMS]
    assert all(len(i.anchors) == 5 for i in study.items.all())
    assert study.items.get(key="truncation_artifact").anchors[0].startswith("unreadable")


def test_items_are_editable_while_draft_and_validated():
    study = ReaderStudyFactory()
    definition.set_items(study, [{"key": "sharpness", "label": "Sharpness", "anchors": list("abcde")}])
    assert list(study.items.values_list("key", flat=True)) == ["sharpness"]
    with pytest.raises(Exception, match="five"):
        definition.set_items(study, [{"key": "bad", "label": "Bad", "anchors": ["a", "b"]}])


def test_stored_assignment_respects_rules_and_rederives_from_its_inputs(world):
    study = world.study
    tasks = study.tasks.select_related("reader", "case")
    assert tasks.count() == 6 * 2 * 2  # 6 cases x 2 sequences x 2 versions, 1 reader per case
    assert all(t.reader.institution_id != t.case.institution_id for t in tasks)
    stored = {}
    for task in tasks.order_by("reader_id", "position"):
        stored.setdefault(str(task.reader_id), []).append(definition.planned_task(task))
    assert definition.rederive(study) == stored
    assert all(t.panels.count() == 1 for t in tasks)


def test_assignment_cannot_be_regenerated_once_reading_started(world):
    with pytest.raises(definition.StudyStateError):
        definition.generate(world.study)


def test_appending_cases_keeps_existing_positions(world):
    before = dict(world.study.tasks.values_list("token", "position"))
    new_cases = []
    for site in world.sites:
        from tests.factories import CaseFactory

        case = CaseFactory(institution=site)
        image_pair(case, "T2W")
        image_pair(case, "FLAIR")
        new_cases.append(case)
    added = definition.append_cases(world.study, new_cases)
    assert added == 3 * 2 * 2
    assert dict(world.study.tasks.filter(token__in=before).values_list("token", "position")) == before
    assert world.study.tasks.filter(case__in=new_cases).order_by("position").first().position > min(
        before.values()
    )
    assert definition.rederive(world.study) == {
        str(r.pk): [definition.planned_task(t) for t in world.study.tasks.filter(reader=r).order_by("position")]
        for r in world.readers
    }


def test_export_rows_are_unblinded_for_admins(world):
    rows = definition.assignment_rows(world.study)
    assert len(rows) == world.study.tasks.count()
    assert set(rows[0]) == set(definition.ASSIGNMENT_COLUMNS)
    assert {r["version"] for r in rows} == {"conventional", "dl"}


def test_paired_mode_tasks_have_two_panels_with_both_versions(db):
    paired = build_world(mode="paired")
    for task in paired.study.tasks.all():
        versions = {p.panel: p.series.version for p in task.panels.select_related("series")}
        assert versions == {"A": task.left_version, "B": task.right_version}
        assert task.version == ""


def test_task_check_constraint_rejects_mixed_modes(world):
    task = world.study.tasks.first()
    with pytest.raises(IntegrityError):
        ReadingTask.objects.filter(pk=task.pk).update(left_version="dl")


def test_autosave_audits_every_change_and_identical_resave_is_a_no_op(world):
    reader = world.readers[0]
    task = reading.reader_tasks(reader).order_by("position").first()
    reading.autosave(reader, task, "A", {"noise": 2})
    reading.autosave(reader, task, "A", {"noise": 2})
    reading.autosave(reader, task, "A", {"noise": 4})
    score = Score.objects.get(task=task, item__key="noise")
    assert score.value == 4
    assert list(score.audit.values_list("old_value", "new_value", "changed_by")) == [
        (None, 2, reader.pk), (2, 4, reader.pk)
    ]


def test_submit_is_idempotent_and_revisions_are_audited(world):
    reader = world.readers[0]
    task = reading.reader_tasks(reader).order_by("position").first()
    with pytest.raises(reading.InvalidScores) as incomplete:
        reading.submit(reader, task, {"A": {"noise": 3}}, 10.0)
    assert "A.overall_quality" in incomplete.value.missing
    reading.submit(reader, task, {"A": ALL_FIVES}, 12.5)
    audits = ScoreAudit.objects.count()
    reading.submit(reader, task, {"A": ALL_FIVES}, 99.0)
    task.refresh_from_db()
    assert (task.status, task.seconds_on_task, task.revision_seconds) == (TaskStatus.SUBMITTED, 12.5, 0.0)
    assert ScoreAudit.objects.count() == audits
    reading.submit(reader, task, {"A": {**ALL_FIVES, "noise": 1}}, 4.0)
    task.refresh_from_db()
    assert task.revision_seconds == 4.0 and ScoreAudit.objects.count() == audits + 1


def test_locked_study_refuses_changes(world):
    reader = world.readers[0]
    task = reading.reader_tasks(reader).first()
    definition.lock(world.study)
    with pytest.raises(reading.Locked):
        reading.autosave(reader, task, "A", {"noise": 2})


def test_invalid_scores_are_refused_clearly(world):
    reader = world.readers[0]
    task = reading.reader_tasks(reader).first()
    for panel, scores, message in [("A", {"nope": 3}, "Unknown item"), ("A", {"noise": 6}, "1 to 5"),
                                   ("A", {"noise": True}, "1 to 5"), ("B", {"noise": 3}, "Unknown panel")]:
        with pytest.raises(reading.InvalidScores, match=message):
            reading.autosave(reader, task, panel, scores)


def test_resume_goes_to_first_unsubmitted_then_to_the_first_for_review(world):
    reader = world.readers[0]
    tasks = list(reading.reader_tasks(reader).order_by("position"))
    assert reading.resume_task(reader, world.study.token) == tasks[0]
    reading.submit(reader, tasks[0], {"A": ALL_FIVES}, 1.0)
    assert reading.resume_task(reader, world.study.token) == tasks[1]
    for task in tasks[1:]:
        reading.submit(reader, task, {"A": ALL_FIVES}, 1.0)
    assert reading.resume_task(reader, world.study.token) == tasks[0]  # the read-only review starts at the first
    with pytest.raises(reading.Finished):
        reading.autosave(reader, tasks[-1], "A", {"noise": 1})


def test_progress_with_eta_from_median_time_on_task(world):
    reader = world.readers[0]
    tasks = list(reading.reader_tasks(reader).order_by("position"))
    for task, seconds in zip(tasks[:3], (10.0, 30.0, 20.0), strict=True):
        reading.submit(reader, task, {"A": ALL_FIVES}, seconds)
    result = progress.study_progress(world.study)
    mine = next(p for p in result["readers"] if p.label == reader.pseudonym)
    assert (mine.done, mine.total, mine.median_seconds) == (3, len(tasks), 20.0)
    assert mine.eta_seconds == (len(tasks) - 3) * 20.0
    site = next(p for p in result["sites"] if p.label == reader.institution.pseudonym)
    assert site.eta_seconds == mine.eta_seconds
    others = [p for p in result["readers"] if p.label != reader.pseudonym]
    assert all(p.eta_seconds is None for p in others)


def test_calibration_tasks_first_and_other_readers_scores_after_submit(db):
    calibrated = build_world(calibration=1, readers_per_case=1)
    reader_b, reader_c = calibrated.readers[1], calibrated.readers[2]  # case 0 is Alpha's: B and C read it
    task_b = reading.reader_tasks(reader_b).order_by("position").first()
    task_c = reading.reader_tasks(reader_c).get(case=task_b.case, sequence=task_b.sequence, version=task_b.version)
    assert task_b.calibration and task_b.position <= 4
    with pytest.raises(reading.NotFound):
        reading.calibration_scores(reader_b, task_b)
    reading.submit(reader_c, task_c, {"A": {**ALL_FIVES, "noise": 2}}, 3.0)
    task_b = reading.submit(reader_b, task_b, {"A": ALL_FIVES}, 3.0)
    result = reading.calibration_scores(reader_b, task_b)
    assert result["others"] == [{"reader": "Reader 1", "scores": {"A": {**ALL_FIVES, "noise": 2}}}]
