"""The OpenAPI schema is generated without a single drf-spectacular warning or error, validates, and describes the
endpoints the frontend and scripts use; `/api/schema/` serves it."""

import json

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

from tests.factories import CoordinatorFactory, ReaderFactory


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    """`manage.py spectacular --validate --fail-on-warn`: raises on any warning or error, or an invalid schema."""
    path = tmp_path_factory.mktemp("openapi") / "schema.json"
    GENERATOR_STATS.reset()  # the counts are process-wide; count only this generation
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(path))
    assert not GENERATOR_STATS
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", [
    "/api/imaging/uploads/",
    "/api/imaging/series/{id}/",
    "/api/enhancement-models/",
    "/api/enhancement-models/{id}/retire/",
    "/api/reading/studies/{id}/",
    "/api/reading/tasks/{task_token}/",
    "/api/reading/tasks/{task_token}/submit/",
    "/api/analysis/studies/{id}/exports/{kind}/",
    "/api/analysis/studies/{id}/export-jobs/",
    "/api/analysis/export-jobs/{job_id}/",
    "/api/analysis/export-jobs/{job_id}/download/",
    "/api/analysis/studies/{id}/power-analyses/",
    "/api/analysis/power-analyses/{job_id}/",
    "/api/analysis/power-analyses/{job_id}/retry/",
    "/api/analysis/rois/{task_token}/",
    "/api/analysis/rois/{task_token}/{label}/",
])
def test_key_paths_are_documented(schema, path):
    assert path in schema["paths"]


def test_reader_endpoints_use_the_reader_session_cookie(schema):
    scheme = schema["components"]["securitySchemes"]["readerSessionAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "cookie", "sessionid")
    for path, method in [("/api/reading/tasks/{task_token}/", "get"), ("/api/analysis/rois/{task_token}/", "post")]:
        assert schema["paths"][path][method]["security"] == [{"readerSessionAuth": []}]


def test_export_job_answers_and_downloads_are_described(schema):
    paths = schema["paths"]
    created = paths["/api/analysis/studies/{id}/export-jobs/"]["post"]["responses"]["202"]
    assert created["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ExportJob"}
    assert set(schema["components"]["schemas"]["ExportJob"]["properties"]) == {
        "id", "study", "kind", "status", "progress", "rows", "error", "attempts", "max_attempts", "can_retry",
        "download_url"}
    retried = paths["/api/analysis/export-jobs/{job_id}/retry/"]["post"]["responses"]
    assert retried["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ExportJob"}
    assert set(retried) == {"202", "404", "409"}
    for job in ("UploadBatch", "EnhancementJob"):
        assert {"status", "attempts", "max_attempts", "error", "heartbeat_at", "can_retry"} <= set(
            schema["components"]["schemas"][job]["properties"])

    download = paths["/api/analysis/export-jobs/{job_id}/download/"]["get"]["responses"]["200"]["content"]
    assert set(download) == {"text/csv", "application/pdf"}
    assert download["text/csv"]["schema"] == {"type": "string", "format": "binary"}
    csv = paths["/api/analysis/studies/{id}/exports/{kind}/"]["get"]["responses"]["200"]["content"]
    assert csv["text/csv"]["schema"] == {"type": "string", "format": "binary"}


@pytest.mark.django_db
def test_schema_endpoint_answers_staff_only(client):
    """Readers are refused (tests/accounts/test_api_access.py): the schema names every admin and export endpoint."""
    client.force_login(ReaderFactory())
    assert client.get("/api/schema/").status_code == 403
    client.force_login(CoordinatorFactory())
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/reading/tasks/{task_token}/" in response.content
