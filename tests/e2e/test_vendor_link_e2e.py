"""A coordinator links a held vendor-enhanced series on the Cases page (issue 11, item 3): the page lists it with
why it is held and every conventional series of its study; a wrong choice is refused in words by the attach-vendor
API the form calls, the right one links it and the page shows the DL version with its source; Unlink undoes it."""

import pydicom
import pytest

from apps.imaging import classification, synthetic
from apps.imaging.models import Series, SeriesSource, SeriesStatus, Version
from apps.imaging.services import ingest, uploads
from tests.e2e.test_upload_e2e import log_in
from tests.factories import CoordinatorFactory
from tests.imaging.test_vendor_series import repeat_series, without_references

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_enhancement(monkeypatch):
    monkeypatch.setattr("apps.imaging.services.enhancement.enqueue", lambda job: None)


def test_a_coordinator_links_an_ambiguous_vendor_series_on_the_cases_page(page, tmp_path, artifacts):
    coordinator = CoordinatorFactory()
    patient = synthetic.make_patient(0, index=1, seed=5)
    written = synthetic.write_study(tmp_path / "in" / "conventional", patient, seed=5, sequences=("T2W", "FLAIR"),
                                    shape_2d=(4, 64, 64))
    t2w = [path for path in written if _sequence(path) == "T2W"]
    without_references(synthetic.write_vendor_enhanced(t2w, tmp_path / "in" / "vendor"))
    repeat_series(t2w, tmp_path / "in" / "repeat")  # a second T2W of equal geometry: the vendor series is ambiguous
    ingest.process_batch(uploads.stage_path(coordinator.institution, coordinator, tmp_path / "in").pk)
    vendor = Series.objects.get(source=SeriesSource.VENDOR)
    first, second = Series.objects.filter(version=Version.CONVENTIONAL, sequence="T2W").order_by("pk")
    flair = Series.objects.get(version=Version.CONVENTIONAL, sequence="FLAIR")
    assert vendor.status == SeriesStatus.HELD_VENDOR

    log_in(page, coordinator)
    page.goto("/imaging/cases/")
    form = page.locator(f"form.vendor-link[data-vendor='{vendor.pk}']")
    assert "2 conventional series match it" in page.inner_text("table.vendor-links")
    page.screenshot(path=str(artifacts / "cases-vendor-held.png"), full_page=True)
    page.goto("/imaging/enhancement/")  # the same list and form above the jobs, which name their model
    assert page.locator(f"form.vendor-link[data-vendor='{vendor.pk}']").count() == 1
    assert "deployment default" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "enhancement-vendor-held.png"), full_page=True)
    page.goto("/imaging/cases/")

    form.locator("select").select_option(str(flair.pk))
    form.locator("button").click()
    result = form.locator(".vendor-link-result")
    result.filter(has_text="Not linked").wait_for()
    assert "classified T2W, the conventional series FLAIR" in result.inner_text()
    page.screenshot(path=str(artifacts / "cases-vendor-refused.png"), full_page=True)

    form.locator("select").select_option(str(second.pk))
    form.locator("button").click()
    page.wait_for_selector("table.vendor-links", state="detached")
    vendor.refresh_from_db()
    assert vendor.status == SeriesStatus.READY and vendor.conventional == second
    assert f"(vendor of series {second.pk})" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "cases-vendor-linked.png"), full_page=True)
    assert first.dl_versions.count() == 0

    # The link was wrong after all: unlinked on the same page, the series is held again and offered for linking.
    page.locator(f"button.unlink-vendor[data-vendor='{vendor.pk}']").click()
    page.wait_for_selector("table.vendor-pairs", state="detached")
    vendor.refresh_from_db()
    assert vendor.status == SeriesStatus.HELD_VENDOR and vendor.conventional is None
    assert f"Unlinked by a coordinator from conventional series {second.pk}" in page.inner_text("table.vendor-links")
    page.screenshot(path=str(artifacts / "cases-vendor-unlinked.png"), full_page=True)
    assert not page.errors


def _sequence(path) -> str:
    return classification.classify_sequence(pydicom.dcmread(path, stop_before_pixels=True))
