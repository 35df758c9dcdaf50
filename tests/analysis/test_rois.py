"""ROIs for SNR/CNR: ellipse masks and statistics by hand, rescaled pixel values, the reader API, the export."""

from __future__ import annotations

import io
import statistics

import numpy as np
import pandas as pd
import pytest

from apps.analysis import exports
from apps.analysis.models import RoiMeasurement
from apps.analysis.rois import Ellipse, RoiError, roi_statistics
from apps.analysis.stats.snr import snr_table
from apps.imaging.models import Instance, Version
from apps.studies.models import ReadingTask, StudyStatus
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory, InstanceFactory

SIZE = 16
GEOMETRY = {"slice_index": 1, "center_row": 4, "center_col": 5, "radius_rows": 2, "radius_cols": 2}
# Pixel centres within distance 2 of (4, 5): the centre, 4 at distance 1, 4 diagonal, 4 at distance 2.
DISC = [(4, 5), (3, 5), (5, 5), (4, 4), (4, 6), (3, 4), (3, 6), (5, 4), (5, 6), (2, 5), (6, 5), (4, 3), (4, 7)]


def test_ellipse_mask_by_hand() -> None:
    mask = Ellipse(**GEOMETRY).mask((SIZE, SIZE))
    assert mask.sum() == 13
    assert sorted(zip(*np.nonzero(mask), strict=True)) == sorted(DISC)
    wide = Ellipse(0, 4, 5, radius_rows=0.5, radius_cols=3).mask((SIZE, SIZE))
    assert sorted(zip(*np.nonzero(wide), strict=True)) == [(4, c) for c in range(2, 9)]


def test_statistics_by_hand() -> None:
    values = np.full((SIZE, SIZE), 1000.0)
    inside = [10.0, 20.0, 30.0] + [40.0] * 10
    for (r, c), v in zip(DISC, inside, strict=True):
        values[r, c] = v
    mean, sd, n = roi_statistics(values, Ellipse(**GEOMETRY).mask(values.shape))
    assert n == 13
    assert mean == pytest.approx(460 / 13)
    assert sd == pytest.approx(statistics.stdev(inside))


def test_too_small_or_outside() -> None:
    with pytest.raises(RoiError, match="fewer than"):
        roi_statistics(np.zeros((4, 4)), Ellipse(0, 1.5, 1.5, 0.5, 0.5).mask((4, 4)))
    with pytest.raises(RoiError, match="outside"):
        Ellipse(0, 1, 1, 2, 2).check((SIZE, SIZE), 3)
    with pytest.raises(RoiError, match="slice_index"):
        Ellipse(3, 8, 8, 2, 2).check((SIZE, SIZE), 3)


def known_pixels(slope: float, intercept: float) -> tuple[np.ndarray, list[float]]:
    stored = np.full((SIZE, SIZE), 500, dtype=np.uint16)
    inside = [100 + 10 * i for i in range(len(DISC))]
    for (r, c), v in zip(DISC, inside, strict=True):
        stored[r, c] = v
    return stored, [v * slope + intercept for v in inside]


@pytest.fixture
def measured_world(db):
    """A study whose T2W image of one case has known pixels on slice 1; the DL copy is stored rescaled."""
    world = build_world(cases_per_site=1, sequences=("T2W",))
    task = ReadingTask.objects.filter(study=world.study, version=Version.CONVENTIONAL).first()
    conventional = task.panels.get().series
    dl = conventional.dl_versions.get()
    expected = {}
    for series, slope, intercept in ((conventional, 1.0, 0.0), (dl, 2.0, -100.0)):
        stored, values = known_pixels(slope, intercept)
        Instance.objects.filter(series=series, instance_number=2).delete()
        InstanceFactory(series=series, index=1, pixels=stored,
                        tags={"RescaleSlope": slope, "RescaleIntercept": intercept})
        expected[series.version] = values
    world.task, world.expected = task, expected
    return world


def post_roi(client, task, **overrides):
    return client.post(f"/api/analysis/rois/{task.token}/", {"label": "S1", **GEOMETRY, **overrides},
                       content_type="application/json")


def test_reader_draws_once_and_both_versions_are_measured_server_side(client, measured_world) -> None:
    task = measured_world.task
    client.force_login(task.reader)
    response = post_roi(client, task)
    assert response.status_code == 201, response.content
    assert set(response.json()) == {"label", *GEOMETRY}
    roi = RoiMeasurement.objects.get()
    for version, values in measured_world.expected.items():
        assert getattr(roi, f"{version}_mean") == pytest.approx(statistics.mean(values))
        assert getattr(roi, f"{version}_sd") == pytest.approx(statistics.stdev(values))
        assert getattr(roi, f"{version}_pixels") == 13
    assert roi.dl_mean == pytest.approx(2 * roi.conventional_mean - 100)


def test_rois_stay_on_their_task_and_nothing_tells_the_versions_apart(client, measured_world) -> None:
    """Both tasks of one image measure both versions, but neither shows the other's ROIs (that would link them)."""
    task = measured_world.task
    other = ReadingTask.objects.get(study=task.study, reader=task.reader, case=task.case, sequence=task.sequence,
                                    version=Version.DL)
    client.force_login(task.reader)
    first = post_roi(client, task)
    assert client.get(f"/api/analysis/rois/{other.token}/").json() == []
    second = post_roi(client, other)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert RoiMeasurement.objects.count() == 2
    assert {roi.conventional_mean for roi in RoiMeasurement.objects.all()} == {
        RoiMeasurement.objects.first().conventional_mean
    }
    assert client.delete(f"/api/analysis/rois/{other.token}/S1/").status_code == 204
    assert len(client.get(f"/api/analysis/rois/{task.token}/").json()) == 1, "deleting on one task leaves the other"
    listed = [client.get(f"/api/analysis/rois/{t.token}/") for t in (task, other)]
    for response in (first, *listed):
        body = response.content.decode().lower()
        assert "dl" not in body and "conventional" not in body and "mean" not in body and "series" not in body


def test_redrawing_a_label_replaces_it_and_delete_removes_it(client, measured_world) -> None:
    task = measured_world.task
    client.force_login(task.reader)
    post_roi(client, task)
    post_roi(client, task, center_row=8, radius_rows=3)
    assert RoiMeasurement.objects.get().center_row == 8
    assert post_roi(client, task, label="background", center_row=12, center_col=12).status_code == 201
    assert len(client.get(f"/api/analysis/rois/{task.token}/").json()) == 2
    assert client.delete(f"/api/analysis/rois/{task.token}/S1/").status_code == 204
    assert client.delete(f"/api/analysis/rois/{task.token}/S1/").status_code == 404
    assert list(RoiMeasurement.objects.values_list("label", flat=True)) == ["background"]


def test_drawing_redrawing_and_deleting_an_roi_is_in_the_audit_trail(client, measured_world) -> None:
    from auditlog.models import LogEntry

    task = measured_world.task
    client.force_login(task.reader)
    post_roi(client, task)
    roi = RoiMeasurement.objects.get()
    post_roi(client, task, center_row=8)
    client.delete(f"/api/analysis/rois/{task.token}/S1/")
    entries = LogEntry.objects.get_for_object(roi).order_by("pk")
    assert [(e.action, e.actor) for e in entries] == [
        (LogEntry.Action.CREATE, task.reader), (LogEntry.Action.UPDATE, task.reader),
        (LogEntry.Action.DELETE, task.reader),
    ]
    assert entries[1].changes_dict == {"center_row": ["4.0", "8.0"]}


@pytest.mark.parametrize(
    "overrides",
    [{"label": "S3"}, {"center_row": 0}, {"slice_index": 9}, {"radius_cols": 0.1}, {"center_col": "x"}],
)
def test_bad_rois_are_refused(client, measured_world, overrides) -> None:
    task = measured_world.task
    client.force_login(task.reader)
    assert post_roi(client, task, **overrides).status_code == 400
    assert not RoiMeasurement.objects.exists()


def test_only_the_tasks_reader_may_draw(client, measured_world) -> None:
    task = measured_world.task
    assert post_roi(client, task).status_code in (401, 403)
    for user in (*[r for r in measured_world.readers if r != task.reader], AdminFactory()):
        client.force_login(user)
        assert post_roi(client, task).status_code == 404
        assert client.get(f"/api/analysis/rois/{task.token}/").status_code == 404


def test_a_locked_study_takes_no_more_rois(client, measured_world) -> None:
    task = measured_world.task
    task.study.status = StudyStatus.LOCKED
    task.study.save()
    client.force_login(task.reader)
    assert post_roi(client, task).status_code == 400


def test_a_reader_who_has_finished_changes_no_roi(client, measured_world) -> None:
    """After the reader's last submit the study is theirs to review read-only: ROIs, like scores, stay as they
    were (409), so the ROI export cannot change behind the submitted scores."""
    task = measured_world.task
    client.force_login(task.reader)
    assert post_roi(client, task).status_code == 201
    before = RoiMeasurement.objects.get()
    read(measured_world, readers=[task.reader])  # every task of this reader submitted
    response = post_roi(client, task, center_row=before.center_row + 1)
    assert response.status_code == 409 and "read-only review" in response.json()["detail"]
    deleted = client.delete(f"/api/analysis/rois/{task.token}/S1/")
    assert deleted.status_code == 409
    after = RoiMeasurement.objects.get()
    assert (after.pk, after.center_row, after.updated_at) == (before.pk, before.center_row, before.updated_at)
    assert client.get(f"/api/analysis/rois/{task.token}/").status_code == 200, "still shown in the review"


def test_roi_export_has_both_versions_and_gives_table_2(client, measured_world) -> None:
    task = measured_world.task
    client.force_login(task.reader)
    post_roi(client, task)
    post_roi(client, task, label="S2", center_row=10, center_col=10)
    post_roi(client, task, label="background", radius_rows=1.5, radius_cols=1.5)
    client.force_login(AdminFactory())
    response = client.get(f"/analysis/studies/{task.study.pk}/exports/rois.csv")
    frame = pd.read_csv(io.BytesIO(b"".join(response.streaming_content)))
    assert list(frame.columns) == list(exports.ROI_COLUMNS)
    assert len(frame) == 6
    s1 = frame[frame["roi"] == "S1"].set_index("version")
    assert s1.loc["conventional", "mean"] == pytest.approx(statistics.mean(measured_world.expected["conventional"]))
    assert s1.loc["dl", "mean"] == pytest.approx(statistics.mean(measured_world.expected["dl"]))
    table = snr_table(exports.analysis_rois(frame))
    snr1 = table[table["measure"] == "snr1"].iloc[0]
    background_sd = frame[(frame["roi"] == "background") & (frame["version"] == "conventional")]["sd"].item()
    assert background_sd > 0
    assert snr1["mean_conventional"] == pytest.approx(s1.loc["conventional", "mean"] / background_sd)
