"""Who may read the API's own description, and how the API answers a caller whose credentials fail.

The schema, its Swagger page and the API root list every admin and export endpoint and the conventional/DL enums:
staff (coordinators, admins) only, never readers. A wrong HTTP Basic password is 401 with a challenge, as HTTP
requires, and the lockout still answers 429."""

import base64

import pytest
from django.test import Client

from tests.factories import PASSWORD, AdminFactory, CoordinatorFactory, ReaderFactory

pytestmark = pytest.mark.django_db

DESCRIPTIONS = ["/api/schema/", "/api/docs/", "/api/imaging/"]


def logged_in(user) -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def basic(username: str, password: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.mark.parametrize("url", DESCRIPTIONS)
def test_a_reader_cannot_read_the_api_description(url):
    reader = logged_in(ReaderFactory())
    response = reader.get(url)
    assert response.status_code == 403, url
    body = response.content.decode()
    for leak in ("export", "conventional", "/api/reading/studies", "enhancement-jobs"):
        assert leak not in body, (url, leak)


@pytest.mark.parametrize("url", DESCRIPTIONS)
def test_a_reader_cannot_read_it_with_http_basic_either(client, url):
    reader = ReaderFactory()
    assert client.get(url, **basic(reader.username, PASSWORD)).status_code == 403, url


@pytest.mark.parametrize("url", DESCRIPTIONS)
def test_staff_read_the_api_description(url):
    for user in (CoordinatorFactory(), AdminFactory()):
        response = logged_in(user).get(url)
        assert response.status_code == 200, (url, user.role)
    schema = logged_in(AdminFactory()).get("/api/schema/").content.decode()
    assert "/api/analysis/studies/{id}/exports/{kind}/" in schema


@pytest.mark.parametrize("url", ["/api/schema/", "/api/imaging/", "/api/imaging/cases/", "/api/reading/studies/"])
def test_anonymous_callers_are_challenged(client, url):
    response = client.get(url)
    assert response.status_code == 401, url
    assert response["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize("url", ["/api/imaging/cases/", "/api/reading/studies/", "/api/schema/"])
def test_a_wrong_basic_password_is_401_with_a_challenge(client, url):
    coordinator = CoordinatorFactory()
    response = client.get(url, **basic(coordinator.username, "wrong"))
    assert response.status_code == 401, url
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert "Invalid username/password" in response.content.decode()


def test_the_right_basic_password_still_works_and_the_lockout_still_answers_429(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    coordinator = CoordinatorFactory()
    assert client.get("/api/imaging/cases/", **basic(coordinator.username, PASSWORD)).status_code == 200
    answers = [client.get("/api/imaging/cases/", **basic(coordinator.username, "wrong")).status_code
               for _ in range(3)]
    assert answers == [401, 401, 429]
    locked = client.get("/api/imaging/cases/", **basic(coordinator.username, PASSWORD))
    assert locked.status_code == 429 and "locked" in locked.json()["detail"]


def test_a_logged_in_session_without_csrf_is_still_403_not_a_basic_challenge():
    client = Client(enforce_csrf_checks=True)
    admin = AdminFactory()
    assert client.post("/accounts/login/", {"username": admin.username, "password": PASSWORD,
                                            "csrfmiddlewaretoken": "x"}).status_code == 403
    client.force_login(admin)
    response = client.post("/api/reading/studies/", {}, content_type="application/json")
    assert response.status_code == 403 and "WWW-Authenticate" not in response
    assert "CSRF" in response.json()["detail"]
