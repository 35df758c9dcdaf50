"""Request bodies of the API: a body of the wrong shape (a list, a string, a number, null where an object is
expected), invalid JSON or JSON nested absurdly deep answers 400 with a message, never 500, and changes nothing
(issue 10, item 9)."""

import io
import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.exceptions import ParseError
from rest_framework.views import APIView

from apps.enhancement_models.models import EnhancementModel
from apps.imaging.models import EnhancementJob, UploadBatch, Version
from apps.studies.models import Score, ScoreAudit
from apps.studies.services import reading
from readerstudy.parsers import MAX_DEPTH, JSONParser
from tests.factories import AdminFactory, CoordinatorFactory, ReaderStudyFactory
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

DEEP = 10_000
BAD_BODIES = {
    "list": json.dumps([{"panel": "A", "scores": {"noise": 1}}]),
    "string": json.dumps("panel=A"),
    "number": "7",
    "null": "null",
    "deep-list": "[" * DEEP + "]" * DEEP,
    "deep-object": '{"a":' * DEEP + "1" + "}" * DEEP,
    "deep-under-recursion-limit": '{"panel": "A", "scores": ' + '{"a":' * 60 + "1" + "}" * 60 + "}",
    "invalid": '{"panel": "A", "scores": {"noise": 1}',
}
WRITE_METHODS = ("post", "put", "patch")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def small_world():
    """One case per site, each read by both readers of the other sites, so every reader has tasks."""
    return build_world(cases_per_site=1, sequences=("T2W",), slices=1, readers_per_case=2)


def first_task(world, reader):
    return reading.reader_tasks(reader).filter(study=world.study).order_by("position").first()


def send(client, method: str, url: str, body: str):
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.mark.parametrize("name", list(BAD_BODIES))
@pytest.mark.parametrize("endpoint", ["scores", "submit"])
def test_a_bad_body_answers_400_and_keeps_the_saved_score(client, name, endpoint):
    world = small_world()
    reader = world.readers[0]
    client.force_login(reader)
    task = first_task(world, reader)
    url = f"/api/reading/tasks/{task.token}/"
    saved = client.put(url + "scores/", {"panel": "A", "scores": {"noise": 3}}, content_type="application/json")
    assert saved.status_code == 200
    audits = ScoreAudit.objects.count()

    response = send(client, "put" if endpoint == "scores" else "post", url + endpoint + "/", BAD_BODIES[name])

    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]
    assert [(s.item.key, s.value) for s in Score.objects.filter(task=task)] == [("noise", 3)]
    assert ScoreAudit.objects.count() == audits
    assert client.get(url).json()["scores"] == {"A": {"noise": 3}}


@pytest.mark.parametrize(("name", "words"), [("list", "object"), ("string", "object"), ("null", "object"),
                                             ("deep-object", "deep"), ("deep-list", "deep"), ("invalid", "JSON")])
def test_the_reader_gets_a_message_and_no_traceback_under_debug(client, settings, name, words):
    settings.DEBUG = True
    world = small_world()
    reader = world.readers[0]
    client.force_login(reader)
    client.raise_request_exception = False
    task = first_task(world, reader)
    response = send(client, "put", f"/api/reading/tasks/{task.token}/scores/", BAD_BODIES[name])
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert b"Traceback" not in response.content and b"File \"" not in response.content


def test_the_depth_limit_is_exact():
    parser = JSONParser()

    def parse(depth: int):
        return parser.parse(io.BytesIO(('{"a":' * depth + "1" + "}" * depth).encode()), "application/json", {})

    assert parse(MAX_DEPTH) is not None
    with pytest.raises(ParseError, match=f"deeper than {MAX_DEPTH}"):
        parse(MAX_DEPTH + 1)
    with pytest.raises(ParseError, match="deeper than"):
        parser.parse(io.BytesIO(b"[" * DEEP + b"]" * DEEP), "application/json", {})
    with pytest.raises(ParseError, match="object"):
        parser.parse(io.BytesIO(b"[1]"), "application/json", {})


def test_study_items_still_take_a_list(client):
    client.force_login(AdminFactory())
    study = ReaderStudyFactory()
    items = [{"key": "overall_quality", "label": "Overall", "anchors": list("12345")}]
    assert client.put(f"/api/reading/studies/{study.pk}/items/", items, content_type="application/json").status_code == 200
    refused = client.put(f"/api/reading/studies/{study.pk}/items/", {"items": items}, content_type="application/json")
    assert refused.status_code == 400


@pytest.mark.parametrize("sequences", [[["T2W"]], [{"a": 1}], "T2W", {"T2W": 1}, [], None, 7])
@pytest.mark.parametrize("method", ["post", "patch"])
def test_study_sequences_must_be_a_list_of_sequences(client, method, sequences):
    client.force_login(AdminFactory())
    study = ReaderStudyFactory(sequences=["T2W"])
    url = "/api/reading/studies/" + ("" if method == "post" else f"{study.pk}/")
    response = send(client, method, url, json.dumps({"title": "S", "sequences": sequences}))
    assert response.status_code == 400 and "sequences" in response.json()
    study.refresh_from_db()
    assert study.sequences == ["T2W"]


# --- every API endpoint that takes a body ---------------------------------------------------------------------


def api_write_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, namespaced url name, url kwargs) of every DRF view under /api/ that accepts POST, PUT or PATCH."""
    found = []

    def walk(patterns, namespaces, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                spaces = [*namespaces, pattern.namespace] if pattern.namespace else namespaces
                yield from walk(pattern.url_patterns, spaces, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield pattern, namespaces, prefix + str(pattern.pattern)

    for pattern, namespaces, route in walk(get_resolver().url_patterns, [], ""):
        cls = getattr(pattern.callback, "cls", None)
        if not (route.startswith(("api/", "^api/")) and cls and issubclass(cls, APIView) and pattern.name):
            continue
        kwargs = tuple(pattern.pattern.regex.groupindex)
        if "format" in kwargs:
            continue  # the same view again with a format suffix
        actions = getattr(pattern.callback, "actions", None)
        methods = set(actions) if actions else {m for m in WRITE_METHODS if hasattr(cls, m)}
        name = ":".join([*namespaces, pattern.name])
        found += [(m, name, kwargs) for m in WRITE_METHODS if m in methods and m in cls.http_method_names]
    return sorted(set(found))


WRITE_ROUTES = api_write_routes()


def test_the_sweep_sees_every_kind_of_write_endpoint():
    names = {(method, name) for method, name, _ in WRITE_ROUTES}
    assert {("put", "reading-api:scores"), ("post", "reading-api:submit"), ("post", "reading-api:study-list"),
            ("patch", "reading-api:study-detail"), ("put", "reading-api:study-items"),
            ("post", "analysis-api:task_rois"), ("post", "analysis-api:export_jobs"), ("patch", "case-detail"),
            ("patch", "series-detail"), ("post", "series-attach-vendor"), ("post", "upload-list"),
            ("post", "enhancement-job-accept"), ("post", "stow-rs")} <= names


def url_for(name: str, keys: tuple[str, ...], world, objects: dict) -> str:
    task = first_task(world, world.readers[0])
    pk_of = {"reading-api:study": objects["draft"].pk, "upload": objects["batch"].pk,
             "case": world.cases[0].pk, "series": objects["series"].pk, "enhancement-job": objects["job"].pk,
             "enhancement-model": objects["model"].pk, "privacy-series": objects["series"].pk}
    values = {"task_token": task.token, "label": "signal", "kind": "long", "study_uid": "1.2.3",
              "job_id": objects["job"].pk}
    kwargs = {}
    for key in keys:
        if key == "pk" and name.startswith("analysis-api:"):
            kwargs[key] = world.study.pk
        elif key == "pk" or key not in values:
            pks = [pk for prefix, pk in pk_of.items() if name.startswith(prefix + "-")]
            if key != "pk" or not pks:
                pytest.fail(f"The sweep does not know what {key!r} of {name} is: add an object of that kind here.")
            kwargs[key] = pks[0]
        else:
            kwargs[key] = values[key]
    return reverse(name, kwargs=kwargs)


def user_for(url: str, world):
    if url.startswith(("/api/reading/tasks/", "/api/analysis/rois/")):
        return world.readers[0]
    if url.startswith("/api/imaging/"):
        return CoordinatorFactory(institution=world.cases[0].institution)
    return AdminFactory()


@pytest.mark.parametrize("name", ["list", "string", "deep-list", "deep-object"])
@pytest.mark.parametrize(("method", "route", "keys"), WRITE_ROUTES, ids=[f"{m} {n}" for m, n, _ in WRITE_ROUTES])
def test_no_write_endpoint_answers_500_to_a_bad_body(client, method, route, keys, name):
    world = small_world()
    series = world.cases[0].series.filter(version=Version.CONVENTIONAL).first()
    objects = {"draft": ReaderStudyFactory(), "series": series, "job": EnhancementJob.objects.get(series=series),
               "batch": UploadBatch.objects.create(institution=world.cases[0].institution),
               "model": EnhancementModel.objects.filter(built_in=True).first()}
    url = url_for(route, keys, world, objects)
    client.force_login(user_for(url, world))
    client.raise_request_exception = False
    response = send(client, method, url, BAD_BODIES[name])
    assert response.status_code < 500, response.content[:300]
    if response.status_code == 400:
        assert response.json()
