"""Every page of the site, opened by every role: a logged-in user on a page of another role gets a 403 page that says
whom the page is for, never a redirect back to the login page (which sends a logged-in user on: a redirect loop);
a caller who is not logged in is sent to the login page once.

The pages are read from the URL configuration, so a page added later is checked too."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import PASSWORD, AdminFactory, CoordinatorFactory, InstitutionFactory, ReaderFactory

pytestmark = pytest.mark.django_db

# Who each page is for, by URL namespace; the 403 page names them.
PAGE_ROLES = {
    "imaging": ({"coordinator", "admin"}, "site coordinators and admins"),
    "analysis": ({"admin"}, "study admins"),
    "reading": ({"reader"}, "readers"),
}
SAMPLE = {"int": "1", "str": "abc", "slug": "abc", "path": "abc"}


def pages(patterns=None, prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    """(namespace, a URL) of every page outside the API and Django's admin, with sample path arguments."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = str(entry.pattern)
        if prefix == "" and route.startswith(("api/", "admin/", "static/")):
            continue
        if isinstance(entry, URLResolver):
            found += pages(entry.url_patterns, prefix + route, entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            url = "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE[m.group(1) or "str"], prefix + route)
            found.append((namespace, url))
    return found


PAGES = [(namespace, url) for namespace, url in pages() if namespace in PAGE_ROLES]


def test_the_role_pages_are_all_found():
    assert {namespace for namespace, _ in PAGES} == set(PAGE_ROLES)
    urls = {url for _, url in PAGES}
    assert {"/imaging/uploads/", "/imaging/cases/", "/imaging/enhancement/", "/reading/",
            "/analysis/studies/1/report/"} <= urls


@pytest.fixture
def users():
    site = InstitutionFactory()
    return {"reader": ReaderFactory(institution=site), "coordinator": CoordinatorFactory(institution=site),
            "admin": AdminFactory()}


def logged_in(user) -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def final_answer(client: Client, url: str, method: str = "get"):
    """Follows redirects like a browser, failing on a loop (a URL seen twice) or more than 5 hops."""
    seen = []
    response = getattr(client, method)(url)
    while response.status_code in (301, 302, 303, 307, 308):
        seen.append(url)
        url = response["Location"]
        assert url not in seen and len(seen) <= 5, f"redirect loop: {' -> '.join(seen + [url])}"
        response = client.get(url)
    return url, response


@pytest.mark.parametrize(("namespace", "url"), PAGES)
@pytest.mark.parametrize("role", ["reader", "coordinator", "admin"])
def test_a_page_of_another_role_says_whom_it_is_for(users, role, namespace, url):
    allowed, who = PAGE_ROLES[namespace]
    user = users[role]
    client = logged_in(user)
    for method in ("get", "post"):
        final_url, response = final_answer(client, url, method)
        if role in allowed:
            assert response.status_code != 403, (method, url)
            continue
        if method == "post" and response.status_code == 405:
            continue  # a page that is only read answers any POST so, whoever sends it
        assert (final_url, response.status_code) == (url, 403), method
        if is_image_request(url):
            continue  # the viewer's image requests: a plain 403, it is no page
        html = " ".join(response.content.decode().split())
        assert f"This page is for {who}" in html
        assert f"You are logged in as <strong>{user.username}</strong>" in html
        assert user.get_role_display().lower() in html
        assert 'href="/"' in html and "<title>" in html and "Log out" in html, "the product's own page"


def is_image_request(url: str) -> bool:
    """The viewer's image requests (one slice, or a range of slices): answered plainly, they are no page."""
    return url.endswith((".dcm", "/slices/"))


@pytest.mark.parametrize(("namespace", "url"), PAGES)
def test_a_caller_who_is_not_logged_in_is_sent_to_the_login_page_once(client, namespace, url):
    final_url, response = final_answer(client, url)
    if is_image_request(url):
        assert response.status_code == 401
        return
    assert final_url.startswith("/accounts/login/?next=") and response.status_code == 200


@pytest.mark.parametrize("role", ["reader", "coordinator", "admin"])
def test_the_start_page_and_django_admin_never_loop(users, role):
    client = logged_in(users[role])
    for url in ("/", "/admin/", "/accounts/login/"):
        final_url, response = final_answer(client, url)
        assert response.status_code == 200, (url, final_url)
