"""A login lasts a working day: the session cookie and the stored session both end after 12 hours."""

import pytest

from tests.factories import PASSWORD, ReaderFactory

pytestmark = pytest.mark.django_db


def test_a_login_lasts_twelve_hours(client):
    reader = ReaderFactory()
    response = client.post("/accounts/login/", {"username": reader.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["max-age"] == 12 * 3600
    assert client.session.get_expiry_age() == 12 * 3600


def test_an_expired_session_is_sent_back_to_the_login_page(client):
    reader = ReaderFactory()
    client.post("/accounts/login/", {"username": reader.username, "password": PASSWORD})
    session = client.session
    session.set_expiry(-1)
    session.save()
    response = client.get("/reading/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
