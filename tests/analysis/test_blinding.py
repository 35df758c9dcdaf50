"""Blinding integrity (issue 14, item 6, backend and report): the question is switched on while the study is a
draft, asked once per submitted image after its scores and never again, changes nothing the reader is shown, says
nothing about whether a guess was right, and the report gives per reader and overall how often readers guessed right
with Bang's blinding index."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
from scipy import stats

from apps.analysis import blinding
from apps.analysis.models import BlindingGuess
from apps.analysis.stats.blinding import bang_index, blinding_table
from apps.studies.models import ReadingTask, StudyStatus
from apps.studies.services import definition
from tests.analysis.test_analysis_plan import draft_study
from tests.analysis.test_report_study import section
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory


def test_bang_index_by_hand() -> None:
    """6 right, 2 wrong, 2 don't know of 10: BI = (6 - 2) / 10; Var = (0.6 + 0.2 - 0.4^2) / 10."""
    bi, se, low, high = bang_index(6, 2, 2)
    assert bi == pytest.approx(0.4) and se == pytest.approx(math.sqrt(0.064))
    z = stats.norm.ppf(0.975)
    assert (low, high) == pytest.approx((0.4 - z * se, 0.4 + z * se))
    assert bang_index(5, 0, 0)[:2] == (1.0, 0.0)  # every answer right: blinding broken, no spread
    assert bang_index(0, 0, 4)[:2] == (0.0, 0.0)  # all "don't know": perfectly blind
    assert bang_index(0, 9, 1)[0] == pytest.approx(-0.9)
    assert all(math.isnan(v) for v in bang_index(0, 0, 0))


def test_blinding_table_per_reader_and_overall() -> None:
    guesses = pd.DataFrame(
        [("R1", "dl", "correct")] * 3 + [("R1", "dl", "incorrect"), ("R1", "conventional", "dont_know"),
                                         ("R2", "dl", "skipped"), ("R2", "dl", "correct")],
        columns=["reader", "arm", "outcome"],
    )
    table = blinding_table(guesses).set_index(["reader", "arm"])
    r1 = table.loc[("R1", "dl")]
    assert (r1["n_asked"], r1["n_answered"], r1["n_correct"], r1["n_incorrect"]) == (4, 4, 3, 1)
    assert r1["percent_correct"] == 75.0 and r1["bang_bi"] == pytest.approx(0.5)
    r2 = table.loc[("R2", "dl")]
    assert (r2["n_asked"], r2["n_answered"], r2["bang_bi"]) == (2, 1, 1.0)  # the skipped question is left out
    overall = table.loc[("all readers", "dl")]
    assert (overall["n_asked"], overall["n_correct"], overall["bang_bi"]) == (6, 4, pytest.approx(3 / 5))
    assert math.isnan(table.loc[("R1", "conventional"), "percent_correct"])
    assert table.loc[("R1", "conventional"), "bang_bi"] == 0.0
    with pytest.raises(ValueError, match="unknown blinding outcome"):
        blinding_table(guesses.assign(outcome="maybe"))


def url(task) -> str:
    return f"/api/analysis/blinding/{task.token}/"


def post(client, task, answer):
    return client.post(url(task), json.dumps({"answer": answer}), content_type="application/json")


@pytest.mark.django_db
def test_asked_once_after_the_scores_never_again_and_nothing_else_changes(client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    study = draft_study(world)
    admin = AdminFactory()
    client.force_login(admin)
    switched = client.put(f"/api/analysis/studies/{study.pk}/blinding-question/", {"enabled": True},
                          content_type="application/json")
    assert switched.status_code == 200 and switched.json() == {"enabled": True}
    definition.open_for_reading(study)
    late = client.put(f"/api/analysis/studies/{study.pk}/blinding-question/", {"enabled": False},
                      content_type="application/json")
    assert late.status_code == 409

    reader = world.readers[0]
    client.force_login(reader)
    tasks = list(ReadingTask.objects.filter(study=study, reader=reader).order_by("position"))
    assert {t.version for t in tasks} == {"dl", "conventional"}
    assert all(client.get(url(t)).json() == {"ask": False} for t in tasks)  # not before the scores
    assert post(client, tasks[0], "dl").status_code == 409

    world.study = study
    read(world, readers=[reader])
    before = [client.get(f"/api/reading/tasks/{t.token}/").json() for t in tasks]
    questions = [client.get(url(t)).json() for t in tasks]
    assert questions[0]["ask"] is True and questions[0]["question"] == "Was this image DL-enhanced?"
    assert [c["value"] for c in questions[0]["choices"]] == ["dl", "conventional", "dont_know"]
    assert all(q == questions[0] for q in questions)  # the same for either version: it tells nothing

    assert post(client, tasks[0], "A").status_code == 400  # a paired study's choice
    answered = post(client, tasks[0], "dl")
    assert answered.status_code == 201 and answered.json() == {"answered": True}  # never whether it was right
    assert client.get(url(tasks[0])).json() == {"ask": False}  # never shown again
    assert post(client, tasks[0], "conventional").status_code == 409
    assert post(client, tasks[1], "skipped").status_code == 201
    assert BlindingGuess.objects.get(task=tasks[0]).answer == "dl"

    after = [client.get(f"/api/reading/tasks/{t.token}/").json() for t in tasks]
    assert after == before  # answering changes nothing the reader is shown
    assert "blinding" not in json.dumps(after).lower()

    other = world.readers[1]
    client.force_login(other)
    assert client.get(url(tasks[0])).status_code == 404


@pytest.mark.django_db
def test_paired_mode_asks_which_panel(client) -> None:
    world = build_world(mode="paired", cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    study = draft_study(world)
    study.mode = "paired"
    study.save(update_fields=["mode"])
    definition.generate(study)
    blinding.set_enabled(study, True)
    definition.open_for_reading(study)
    world.study = study
    read(world)
    reader = world.readers[0]
    client.force_login(reader)
    task = ReadingTask.objects.filter(study=study, reader=reader).first()
    question = client.get(url(task)).json()
    assert question["question"] == "Which panel do you think is DL-enhanced?"
    assert [c["value"] for c in question["choices"]] == ["A", "B", "dont_know"]
    dl_panel = "A" if task.left_version == "dl" else "B"
    assert post(client, task, dl_panel).status_code == 201
    assert blinding.guesses_frame(study).to_dict("records") == [{"reader": "R1", "arm": "paired", "outcome": "correct"}]


def asking_study_read(world):
    """The world's cases in a study that asks the question (switched on while a draft), read by every reader."""
    study = draft_study(world)
    blinding.set_enabled(study, True)
    definition.open_for_reading(study)
    world.study = study
    read(world)
    return study


def answered_study():
    """A study that asked the question, read by two readers: the first guessed every image right, the second always
    answered "don't know"."""
    world = build_world(cases_per_site=2, sequences=("T2W",), readers_per_case=2)
    study = asking_study_read(world)
    for reader in world.readers:
        for task in ReadingTask.objects.filter(study=study, reader=reader):
            blinding.answer(reader, task, task.version if reader == world.readers[0] else "dont_know")
    return study


@pytest.mark.django_db
def test_the_report_shows_guesses_per_reader_and_overall(client) -> None:
    study = answered_study()
    client.force_login(AdminFactory())
    html = client.get(f"/analysis/studies/{study.pk}/report/").content.decode("utf-8")
    table = section(html, "blinding")
    assert "Table 8. Blinding integrity" in table and "Bang's BI (95 % CI)" in table
    assert "R1 DL-enhanced 4 4 4 0 0 100.0 1.00" in table  # the first reader guessed every image right
    assert "R2 DL-enhanced 4 4 0 0 4 NA 0.00 (0.00, 0.00)" in table
    assert "all readers DL-enhanced 12 12 4 0 8 100.0 0.33" in table


@pytest.mark.django_db
def test_a_study_that_did_not_ask_says_so(client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    read(world)
    client.force_login(AdminFactory())
    html = client.get(f"/analysis/studies/{world.study.pk}/report/").content.decode("utf-8")
    assert "Not computed: this study did not ask readers which image they think is DL-enhanced." in section(
        html, "blinding"
    )
    assert world.study.status == StudyStatus.READING


@pytest.mark.django_db
def test_the_answers_export_has_one_row_per_answer_scored_against_the_version_shown(client) -> None:
    """Export kind 'blinding' (issue 14, item 6): each answer with what the reader was shown and whether it was
    right, for admins only, as the report's Table 8 counts them."""
    world = build_world(cases_per_site=1, sequences=("T2W",), readers_per_case=2)
    study = asking_study_read(world)
    reader = world.readers[0]
    tasks = list(ReadingTask.objects.filter(study=study, reader=reader).order_by("position"))
    answers = ["dl", "dont_know", "conventional", "skipped"][: len(tasks)]
    for task, answer in zip(tasks, answers, strict=True):
        blinding.answer(reader, task, answer)
    client.force_login(reader)
    assert client.get(f"/analysis/studies/{study.pk}/exports/blinding.csv").status_code in (302, 403, 404)
    client.force_login(AdminFactory())
    response = client.get(f"/analysis/studies/{study.pk}/exports/blinding.csv")
    assert response.status_code == 200
    rows = pd.read_csv(io.StringIO(b"".join(response.streaming_content).decode("utf-8")))
    assert list(rows.columns[:13]) == ["study_id", "reader", "reader_site", "task_position", "case_id", "site",
                                       "sequence", "shown", "version_left", "version_right", "answer", "outcome",
                                       "answered_at"]
    assert list(rows["task_position"]) == [t.position for t in tasks]
    assert list(rows["shown"]) == [t.version for t in tasks]
    expected = [("correct" if a == t.version else "incorrect") if a in ("dl", "conventional") else a
                for t, a in zip(tasks, answers, strict=True)]
    assert list(rows["outcome"]) == expected
    assert list(rows["answer"]) == answers
    assert set(rows["case_id"]) == {t.case.code for t in tasks}


@pytest.mark.django_db
def test_analyze_scores_with_the_blinding_export_gives_the_reports_table_8(client, tmp_path) -> None:
    from django.core.management import CommandError, call_command

    from apps.analysis import services

    study = answered_study()
    client.force_login(AdminFactory())
    for kind, name in (("long", "long.csv"), ("blinding", "blinding.csv")):
        response = client.get(f"/api/analysis/studies/{study.pk}/exports/{kind}/")
        (tmp_path / name).write_bytes(b"".join(response.streaming_content))

    call_command("analyze_scores", f"--scores={tmp_path / 'long.csv'}", f"--blinding={tmp_path / 'blinding.csv'}",
                 f"--out={tmp_path / 'out'}")
    from_files = pd.read_csv(tmp_path / "out" / "blinding.csv")
    result, _ = services.analyse_study(study)
    expected = pd.read_csv(io.StringIO(result.blinding.to_csv(index=False)))
    pd.testing.assert_frame_equal(from_files, expected)
    assert "all readers" in set(from_files["reader"]) and from_files["n_correct"].sum() > 0
    assert "Table 8. Blinding integrity" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")

    with pytest.raises(CommandError, match="lacks the column"):
        call_command("analyze_scores", f"--scores={tmp_path / 'long.csv'}", f"--blinding={tmp_path / 'long.csv'}",
                     f"--out={tmp_path / 'refused'}")
