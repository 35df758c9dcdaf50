"""Least privilege (design invariant 4) for everything the studies app serves."""

import json

import pytest

from apps.studies.models import ReadingTask, StudyStatus, TaskPanel
from apps.studies.services import reading
from tests.factories import AdminFactory, CoordinatorFactory, ReaderStudyFactory

pytestmark = pytest.mark.django_db


def reader_urls(task: ReadingTask) -> list[tuple[str, str]]:
    panel = task.panels.first()
    return [
        ("get", f"/reading/task/{task.token}/"),
        ("get", f"/api/reading/tasks/{task.token}/"),
        ("put", f"/api/reading/tasks/{task.token}/scores/"),
        ("post", f"/api/reading/tasks/{task.token}/open/"),
        ("post", f"/api/reading/tasks/{task.token}/submit/"),
        ("get", f"/api/reading/tasks/{task.token}/calibration-scores/"),
        ("get", f"/reading/img/{panel.image_token}/0.dcm"),
        ("get", f"/reading/img/{panel.image_token}/slices/?first=0&last=2"),
        ("get", f"/reading/study/{task.study.token}/resume/"),
    ]


def call(client, method, url):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, json.dumps({"panel": "A", "scores": {}}), content_type="application/json")


def test_a_reader_gets_404_for_another_readers_tasks_and_images(client, world):
    me, other = world.readers[0], world.readers[1]
    client.force_login(me)
    for task in ReadingTask.objects.filter(reader=other)[:3]:
        for method, url in reader_urls(task)[:-1]:
            assert call(client, method, url).status_code == 404, url


def test_a_reader_never_reaches_a_case_of_their_own_site(client, world):
    me = world.readers[0]
    assert not reading.reader_tasks(me).filter(case__institution=me.institution).exists()
    client.force_login(me)
    own_site_panels = TaskPanel.objects.filter(task__case__institution=me.institution)
    assert own_site_panels.exists()
    for panel in own_site_panels:
        assert client.get(f"/reading/img/{panel.image_token}/0.dcm").status_code == 404
        assert client.get(f"/reading/img/{panel.image_token}/slices/?first=0&last=2").status_code == 404


def test_a_reader_cannot_reach_admin_export_or_site_endpoints(client, world):
    client.force_login(world.readers[0])
    study = world.study
    for url in [
        "/api/reading/studies/", f"/api/reading/studies/{study.pk}/", f"/api/reading/studies/{study.pk}/progress/",
        f"/api/reading/studies/{study.pk}/assignment/", f"/api/reading/studies/{study.pk}/assignment.csv/",
        "/api/imaging/cases/", "/api/imaging/series/",
    ]:
        assert client.get(url).status_code in (403, 404), url
    assert client.post(f"/api/reading/studies/{study.pk}/lock/").status_code == 403
    for url in ["/admin/", f"/admin/studies/readerstudy/{study.pk}/progress/", "/admin/studies/readerstudy/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_readers_see_nothing_of_a_draft_study(client, world):
    draft = ReaderStudyFactory(status=StudyStatus.DRAFT)
    task = world.study.tasks.filter(reader=world.readers[0]).first()
    ReadingTask.objects.filter(pk=task.pk).update(study=draft)
    client.force_login(world.readers[0])
    for method, url in reader_urls(ReadingTask.objects.get(pk=task.pk)):
        assert call(client, method, url).status_code == 404, url


def test_coordinators_and_admins_are_not_readers(client, world):
    task = world.study.tasks.first()
    coordinator = CoordinatorFactory(institution=world.sites[0])
    for user in (coordinator, AdminFactory()):
        client.force_login(user)
        for method, url in reader_urls(task):
            assert call(client, method, url).status_code in (403, 404), (user.role, url)


def test_a_coordinator_sees_only_their_own_sites_cases(client, world):
    coordinator = CoordinatorFactory(institution=world.sites[0])
    client.force_login(coordinator)
    listed = client.get("/api/imaging/cases/").json()
    codes = {row["code"] for row in listed.get("results", listed)}
    assert codes == {c.code for c in world.cases if c.institution_id == world.sites[0].pk}
    other = next(c for c in world.cases if c.institution_id != world.sites[0].pk)
    assert client.get(f"/api/imaging/cases/{other.pk}/").status_code == 404
    assert client.get("/api/reading/studies/").status_code == 403
    assert client.get(f"/admin/studies/readerstudy/{world.study.pk}/progress/").status_code == 403


def test_anonymous_is_redirected_or_gets_401(client, world):
    """Pages send to the login page; the API and images answer 401 (an image viewer cannot show a login page)."""
    task = world.study.tasks.first()
    for method, url in reader_urls(task):
        response = call(client, method, url)
        if url.startswith(("/api/", "/reading/img/")):
            assert response.status_code == 401, url
            assert response["Cache-Control"] == "private, no-store" or url.startswith("/api/"), url
        else:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert client.get("/reading/").status_code == 302
    assert client.get("/api/reading/studies/").status_code in (401, 403)


def test_admin_sees_the_progress_page(client, world):
    client.force_login(AdminFactory())
    response = client.get(f"/admin/studies/readerstudy/{world.study.pk}/progress/")
    assert response.status_code == 200
    assert world.readers[0].pseudonym in response.content.decode()
    for url in ["/admin/studies/readerstudy/", "/admin/studies/readerstudy/add/",
                f"/admin/studies/readerstudy/{world.study.pk}/change/"]:
        assert client.get(url).status_code == 200, url
