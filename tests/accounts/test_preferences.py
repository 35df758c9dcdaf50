"""A reader's viewer settings (issue 12, item 5): GET and PUT /api/reading/preferences/, kept on the account."""

import pytest

from apps.accounts.models import User
from tests.factories import ReaderFactory

pytestmark = pytest.mark.django_db

URL = "/api/reading/preferences/"
DEFAULTS = {"mouse": {"left": "windowLevel", "middle": "pan", "right": "zoom"}}


def test_a_reader_gets_the_defaults_then_their_own_choice_which_holds_across_logins(client):
    reader = ReaderFactory()
    client.force_login(reader)
    first = client.get(URL)
    assert first.status_code == 200 and first.json() == DEFAULTS
    assert first["Cache-Control"] == "private, no-store"

    chosen = {"mouse": {"left": "scroll", "middle": "zoom", "right": "pan"}}
    saved = client.put(URL, chosen, content_type="application/json")
    assert saved.status_code == 200 and saved.json() == chosen
    assert User.objects.get(pk=reader.pk).viewer_preferences == chosen
    client.logout()
    client.force_login(reader)
    assert client.get(URL).json() == chosen


def test_each_reader_has_their_own_settings(client):
    one, other = ReaderFactory(), ReaderFactory()
    client.force_login(one)
    client.put(URL, {"mouse": {"left": "pan", "middle": "pan", "right": "pan"}}, content_type="application/json")
    client.force_login(other)
    assert client.get(URL).json() == DEFAULTS


@pytest.mark.parametrize("body", [
    {"mouse": {"left": "pan", "middle": "zoom"}},
    {"mouse": {"left": "pan", "middle": "zoom", "right": "erase"}},
    {"mouse": {"left": "pan", "middle": "zoom", "right": "zoom", "wheel": "zoom"}},
    {"mouse": ["pan", "zoom", "zoom"]},
    {"theme": "dark"},
])
def test_an_invalid_choice_is_refused_in_words_and_nothing_changes(client, body):
    reader = ReaderFactory()
    client.force_login(reader)
    response = client.put(URL, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]
    assert User.objects.get(pk=reader.pk).viewer_preferences == {}
    assert client.get(URL).json() == DEFAULTS


def test_a_stored_value_no_longer_valid_falls_back_to_the_default(client):
    reader = ReaderFactory(viewer_preferences={"mouse": {"left": "magnify", "middle": "zoom"}})
    client.force_login(reader)
    assert client.get(URL).json() == {"mouse": {"left": "windowLevel", "middle": "zoom", "right": "zoom"}}


def test_anonymous_callers_get_401(client):
    assert client.get(URL).status_code == 401
    assert client.put(URL, DEFAULTS, content_type="application/json").status_code in (401, 403)
