"""Only admins export, see the report or fetch unblinded data; readers, coordinators and anonymous callers never."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from apps.analysis.models import ExportJob, ExportKind
from apps.imaging.models import JobStatus
from tests.analysis.world import build_world, read
from tests.factories import AdminFactory, CoordinatorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db):
    world = build_world()
    read(world, submit_fraction=0.5)
    job = ExportJob.objects.create(study=world.study, kind=ExportKind.LONG, status=JobStatus.DONE)
    job.file.save("exports/secret.csv", ContentFile(b"case_id,version\nX,dl\n"))
    world.job = job
    return world


def unblinded_urls(world) -> list[tuple[str, str]]:
    pk, job = world.study.pk, world.job.pk
    gets = [
        f"/analysis/studies/{pk}/exports/",
        *[f"/analysis/studies/{pk}/exports/{kind}.csv" for kind in ("long", "wide", "assignment", "patients", "rois")],
        f"/analysis/studies/{pk}/report/",
        f"/analysis/studies/{pk}/report.pdf",
        f"/analysis/jobs/{job}/",
        f"/analysis/jobs/{job}/download/",
        *[f"/api/analysis/studies/{pk}/exports/{kind}/" for kind in ("long", "wide", "assignment", "patients", "rois")],
        f"/api/analysis/export-jobs/{job}/",
        f"/api/analysis/export-jobs/{job}/download/",
    ]
    posts = [f"/analysis/studies/{pk}/exports/jobs/", f"/api/analysis/studies/{pk}/export-jobs/"]
    return [("get", url) for url in gets] + [("post", url) for url in posts]


def call(client, method: str, url: str):
    return client.get(url) if method == "get" else client.post(url, {"kind": "long"})


def assert_refused(response, url: str) -> None:
    assert response.status_code in (302, 401, 403, 404), (url, response.status_code)
    if response.status_code == 302:
        assert "/accounts/login" in response["Location"] or "login" in response["Location"], url
    body = b"" if response.streaming else response.content
    assert b"conventional" not in body and b",dl" not in body, url


@pytest.mark.parametrize("who", ["anonymous", "reader", "coordinator"])
def test_nobody_but_an_admin_gets_exports_reports_or_jobs(client, world, who) -> None:
    if who == "reader":
        client.force_login(world.readers[0])
    elif who == "coordinator":
        client.force_login(CoordinatorFactory(institution=world.sites[0]))
    jobs_before = ExportJob.objects.count()
    for method, url in unblinded_urls(world):
        assert_refused(call(client, method, url), url)
    assert ExportJob.objects.count() == jobs_before


def test_an_admin_gets_all_of_it(client, world, django_capture_on_commit_callbacks) -> None:
    client.force_login(AdminFactory())
    for method, url in unblinded_urls(world):
        if "/report" in url:
            continue  # the analysis itself: see test_admin_report_page
        with django_capture_on_commit_callbacks(execute=True):
            response = call(client, method, url)
        assert response.status_code in (200, 202, 302), (url, response.status_code)


def test_admin_report_page_and_pdf(client) -> None:
    world = build_world(cases_per_site=4, sequences=("T2W",), readers_per_case=2)
    read(world)
    client.force_login(AdminFactory())
    page = client.get(f"/analysis/studies/{world.study.pk}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Table 3." in html and "Inter-reader agreement" in html and "data:image/png;base64," in html
    assert str(world.study.seed) in html
    pdf = client.get(f"/analysis/studies/{world.study.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_report_of_a_study_without_submitted_tasks_says_so(client) -> None:
    world = build_world(cases_per_site=1, sequences=("T2W",))
    client.force_login(AdminFactory())
    response = client.get(f"/analysis/studies/{world.study.pk}/report/")
    assert response.status_code == 409
    assert b"No submitted scores yet" in response.content
