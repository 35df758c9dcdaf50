"""The display window is computed once, by the worker, when a series is stored: at ingest and for the DL output
of an enhancement job, with the same function; series stored before that are filled in by `backfill_windows`."""

import io

import pytest
from django.core.management import call_command

from apps.imaging import blinding
from apps.imaging.models import Sequence, Series, Version
from apps.imaging.services import enhancement_runner, ingest, storage, uploads, windows
from apps.institutions.services import add_site
from tests.imaging.dicom_samples import write_patient_study

pytestmark = pytest.mark.django_db


def window_from_store(series: Series) -> tuple[float, float]:
    return blinding.display_window(storage.read_dataset(i) for i in series.instances.all())


@pytest.fixture
def imported(tmp_path):
    site = add_site("east", "East Clinic")
    folder, _ = write_patient_study(tmp_path / "incoming", seed=5)
    ingest.process_batch(uploads.stage_path(site, None, folder).pk)
    return site


def test_ingest_stores_the_window_of_the_whole_series(imported):
    series = list(Series.objects.all())
    assert series
    for item in series:
        assert (item.window_center, item.window_width) == pytest.approx(window_from_store(item))
        assert item.window_width >= 1


def test_enhancement_stores_the_dl_window_computed_like_the_conventional_one(imported):
    conventional = Series.objects.get(sequence=Sequence.T2W, version=Version.CONVENTIONAL)
    job = enhancement_runner.run_job(conventional.enhancement_jobs.get().pk, device="cpu")
    dl = job.output_series
    assert dl.window_center is not None
    assert (dl.window_center, dl.window_width) == pytest.approx(window_from_store(dl))


def test_backfill_fills_series_stored_without_a_window(imported):
    expected = {s.pk: (s.window_center, s.window_width) for s in Series.objects.all()}
    Series.objects.update(window_center=None, window_width=None)
    out = io.StringIO()
    call_command("backfill_windows", stdout=out)
    assert f"computed for {len(expected)} series" in out.getvalue()
    for series in Series.objects.all():
        assert (series.window_center, series.window_width) == pytest.approx(expected[series.pk])
    assert windows.backfill() == 0
