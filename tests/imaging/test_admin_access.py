"""The Django admin as coordinators and readers see it: only their site's imaging objects, nothing else."""

import pytest
from django.urls import reverse

from apps.imaging.dicom_network import find_node
from apps.imaging.models import DicomNode
from tests.factories import (
    AdminFactory,
    CaseFactory,
    CoordinatorFactory,
    InstitutionFactory,
    ReaderFactory,
)

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)


def test_coordinator_admin_shows_only_site_imaging_models(client):
    coordinator = CoordinatorFactory()
    login(client, coordinator)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert models == {"Case", "Series", "UploadBatch", "EnhancementJob"}
    for name in ("admin:accounts_user_changelist", "admin:institutions_institution_changelist",
                 "admin:studies_readerstudy_changelist", "admin:analysis_exportjob_changelist"):
        assert client.get(reverse(name)).status_code == 403, name


def test_coordinator_cannot_open_another_sites_case(client):
    coordinator = CoordinatorFactory()
    own, other = CaseFactory(institution=coordinator.institution), CaseFactory()
    login(client, coordinator)
    listing = client.get(reverse("admin:imaging_case_changelist")).content.decode()
    assert own.code in listing and other.code not in listing
    assert client.get(reverse("admin:imaging_case_change", args=[own.pk])).status_code == 200
    response = client.get(reverse("admin:imaging_case_change", args=[other.pk]))
    assert response.status_code in (302, 403, 404)
    assert other.code not in response.content.decode()
    assert client.post(reverse("admin:imaging_case_change", args=[other.pk]), {"age": 99}).status_code in (
        302, 403, 404)
    other.refresh_from_db()
    assert other.age is None


def test_reader_has_no_admin(client):
    login(client, ReaderFactory())
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "login" in response.url


def test_admin_sees_everything(client):
    login(client, AdminFactory())
    index = client.get(reverse("admin:index"))
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert {"User", "Institution", "ReaderStudy", "Case", "ExportJob"} <= models


def test_admin_registers_a_dicom_node_and_refuses_bad_ae_titles(client):
    site = InstitutionFactory()
    login(client, AdminFactory())
    url = reverse("admin:imaging_dicomnode_add")
    for bad in ("", "   ", "BAD\\TITLE", "X" * 17, "TAB\tAE", "\x00NUL"):
        response = client.post(url, {"ae_title": bad, "institution": site.pk, "allowed_host": ""})
        assert response.status_code == 200, bad
        assert response.context["adminform"].form.errors["ae_title"], bad
    response = client.post(url, {"ae_title": "bad host", "institution": site.pk, "allowed_host": "not-an-ip"})
    assert response.context["adminform"].form.errors["allowed_host"]
    assert not DicomNode.objects.exists()

    response = client.post(url, {"ae_title": " MR_SCANNER_1 ", "institution": site.pk, "allowed_host": "10.0.0.5"})
    assert response.status_code == 302
    node = DicomNode.objects.get()
    assert node.ae_title == "MR_SCANNER_1" and node.institution == site
    assert find_node("MR_SCANNER_1", "10.0.0.5") == node
    assert find_node("MR_SCANNER_1", "10.0.0.6") is None


def test_dicom_nodes_are_for_admins_only(client):
    node = DicomNode.objects.create(ae_title="PACS", institution=InstitutionFactory())
    coordinator = CoordinatorFactory(institution=node.institution)
    login(client, coordinator)
    for url in (
        reverse("admin:imaging_dicomnode_changelist"),
        reverse("admin:imaging_dicomnode_add"),
        reverse("admin:imaging_dicomnode_change", args=[node.pk]),
    ):
        assert client.get(url).status_code == 403, url
    response = client.post(reverse("admin:imaging_dicomnode_add"), {"ae_title": "ROGUE", "institution": node.institution.pk})
    assert response.status_code == 403
    assert list(DicomNode.objects.values_list("ae_title", flat=True)) == ["PACS"]
