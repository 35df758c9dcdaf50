"""Guessing passwords: after too many wrong ones a username is locked from that address, on the login page, the
admin's login and HTTP Basic on the API alike; the right password then fails too, other people are unaffected,
a success clears the count, and an admin can unlock."""

import base64

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, AdminFactory, CoordinatorFactory, ReaderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def log_in(client: Client, username: str, password: str, url: str = "/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def basic(username: str, password: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_a_reader_is_locked_out_after_the_limit_and_then_even_the_right_password_fails(client, limit):
    reader = ReaderFactory()
    for _ in range(limit - 1):
        response = log_in(client, reader.username, "wrong")
        assert response.status_code == 200 and "did not match" in response.content.decode()
    locked = log_in(client, reader.username, "wrong")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert "locked for 15 minutes" in " ".join(locked.content.decode().split())
    response = log_in(client, reader.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session

    other = ReaderFactory()
    assert log_in(client, other.username, PASSWORD).status_code == 302, "other people can still log in"


def test_an_unknown_username_is_locked_the_same_way(client, limit):
    for _ in range(limit):
        log_in(client, "no-such-user", "guess")
    assert log_in(client, "no-such-user", "guess").status_code == 429


def test_the_lock_is_per_address(client, limit):
    reader = ReaderFactory()
    for _ in range(limit):
        log_in(client, reader.username, "wrong")
    elsewhere = Client(REMOTE_ADDR="10.20.30.40")
    assert log_in(elsewhere, reader.username, PASSWORD).status_code == 302


def test_behind_the_proxy_the_address_is_the_hop_the_proxy_appended(client, settings, limit):
    """A client cannot escape its lock by writing its own X-Forwarded-For: only the last entry counts."""
    settings.BEHIND_PROXY = True
    reader = ReaderFactory()
    proxy = {"REMOTE_ADDR": "172.18.0.5"}
    for n in range(limit):
        log_in(Client(HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 198.51.100.7", **proxy), reader.username, "wrong")
    spoofing = Client(HTTP_X_FORWARDED_FOR="1.1.1.99, 198.51.100.7", **proxy)
    assert log_in(spoofing, reader.username, PASSWORD).status_code == 429
    colleague = Client(HTTP_X_FORWARDED_FOR="198.51.100.8", **proxy)
    assert log_in(colleague, reader.username, PASSWORD).status_code == 302, "another address is not locked"


@pytest.mark.parametrize("forwarded", ["not-an-address", "", "1.2.3.4, <script>", "999.1.1.1"])
def test_a_forwarded_header_that_is_no_address_falls_back_to_the_connection(client, settings, limit, forwarded):
    """Someone reaching the application past the proxy cannot write garbage into the login records."""
    settings.BEHIND_PROXY = True
    reader = ReaderFactory()
    attacker = Client(HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="203.0.113.9")
    for _ in range(limit):
        assert log_in(attacker, reader.username, "wrong").status_code in (200, 429)
    assert AccessAttempt.objects.get(username=reader.username).ip_address == "203.0.113.9"
    assert log_in(attacker, reader.username, PASSWORD).status_code == 429


def test_a_success_before_the_limit_clears_the_count(client, limit):
    reader = ReaderFactory()
    for _ in range(limit - 1):
        log_in(client, reader.username, "wrong")
    assert log_in(client, reader.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(limit - 1):
        log_in(client, reader.username, "wrong")
    assert log_in(client, reader.username, PASSWORD).status_code == 302


def test_the_admin_login_is_guarded_too(client, limit):
    admin_user = AdminFactory()
    for _ in range(limit):
        log_in(client, admin_user.username, "wrong", url="/admin/login/")
    assert log_in(client, admin_user.username, PASSWORD, url="/admin/login/").status_code == 429


def test_http_basic_on_the_api_is_guarded_too(client, limit):
    coordinator = CoordinatorFactory()
    url = reverse("case-list")
    assert client.get(url, **basic(coordinator.username, PASSWORD)).status_code == 200
    for _ in range(limit - 1):
        assert client.get(url, **basic(coordinator.username, "wrong")).status_code in (401, 403)
    assert client.get(url, **basic(coordinator.username, "wrong")).status_code == 429
    locked = client.get(url, **basic(coordinator.username, PASSWORD))
    assert locked.status_code == 429 and "locked" in locked.json()["detail"]
    stow = client.post(reverse("stow-rs"), data=b"", content_type="multipart/related; boundary=x",
                       **basic(coordinator.username, PASSWORD))
    assert stow.status_code == 429, "DICOMweb senders are told too"


@pytest.mark.parametrize("header", [
    "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic", "Basic a b",
    "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(), "Basic " + base64.b64encode(b"x" * 20000 + b":y").decode(),
])
def test_malformed_basic_credentials_are_refused_cleanly(client, header):
    response = client.get(reverse("case-list"), HTTP_AUTHORIZATION=header)
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_an_oversized_username_on_the_login_page_is_a_form_error(client):
    response = log_in(client, "x" * 20000, "y")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get().username == "x" * 150


def test_an_admin_unlocks_a_locked_reader(client, limit):
    reader = ReaderFactory()
    for _ in range(limit):
        log_in(client, reader.username, "wrong")
    assert log_in(client, reader.username, PASSWORD).status_code == 429

    admin_client = Client()
    admin_client.force_login(AdminFactory())
    listing = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and reader.username in listing.content.decode()
    attempt = AccessAttempt.objects.get(username=reader.username)
    assert "wrong" not in str(attempt.post_data), "passwords are never stored"
    response = admin_client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert log_in(client, reader.username, PASSWORD).status_code == 302


def test_coordinators_and_readers_cannot_see_or_clear_login_records(client, limit):
    reader = ReaderFactory()
    for _ in range(limit):
        log_in(client, reader.username, "wrong")
    attempt = AccessAttempt.objects.get(username=reader.username)
    coordinator_client = Client()
    coordinator_client.force_login(CoordinatorFactory())
    assert coordinator_client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    assert coordinator_client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]),
                                   {"post": "yes"}).status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
