"""The audit trail (invariant 3): every change to study data says who made it, when, the old and the new value;
it is read-only, admins see all of it, coordinators only their own site's objects' history, readers nothing."""

import base64
import io

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.registry import AUDITED
from apps.imaging.models import Case, Series
from apps.studies.models import ReaderStudy, StudyStatus
from apps.studies.services import definition
from tests.factories import (
    PASSWORD,
    AdminFactory,
    CaseFactory,
    CoordinatorFactory,
    InstitutionFactory,
    ReaderFactory,
    SeriesFactory,
)
from tests.imaging.dicom_samples import write_patient_study
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_enhancement(monkeypatch):
    """Corrections queue DL enhancement; these tests are about the trail, not the engine."""
    from apps.imaging.services import enhancement

    monkeypatch.setattr(enhancement, "enqueue", lambda job: None)


def login(client, user) -> Client:
    client.force_login(user)
    return client


def changes_of(obj) -> list[tuple[int, dict, object]]:
    return [(e.action, e.changes_dict, e.actor) for e in LogEntry.objects.get_for_object(obj).order_by("pk")]


def test_metadata_csv_import_records_old_and_new_values_and_the_coordinator(client):
    coordinator = CoordinatorFactory()
    case = CaseFactory(institution=coordinator.institution, age=50)
    login(client, coordinator)
    csv_file = io.BytesIO(f"case_code,age,who_grade\n{case.code},57,IV\n".encode())
    csv_file.name = "meta.csv"
    client.post(reverse("imaging:case_metadata_import"), {"csv_file": csv_file})

    action, changes, actor = changes_of(case)[-1]
    assert action == LogEntry.Action.UPDATE and actor == coordinator
    assert changes == {"age": ["50", "57"], "who_grade": ["None", "4"]}


def test_a_series_correction_through_the_api_is_recorded(client):
    coordinator = CoordinatorFactory()
    series = SeriesFactory(case=CaseFactory(institution=coordinator.institution), sequence="OTHER")
    login(client, coordinator)
    response = client.patch(reverse("series-detail", args=[series.pk]), {"sequence": "FLAIR"},
                            content_type="application/json")
    assert response.status_code == 200
    action, changes, actor = changes_of(series)[-1]
    assert actor == coordinator
    assert changes == {"sequence": ["OTHER", "FLAIR"], "sequence_overridden": ["False", "True"]}


def test_stow_rs_with_http_basic_names_the_sender_who_created_the_case(tmp_path):
    """HTTP Basic authenticates inside the API view, after the middleware: the actor is still the sender."""
    coordinator = CoordinatorFactory()
    folder, _ = write_patient_study(tmp_path / "stow", seed=5)
    parts = [p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()][:2]
    boundary = "audit-boundary"
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n" for p in parts)
    body += f"--{boundary}--\r\n".encode()
    token = base64.b64encode(f"{coordinator.username}:{PASSWORD}".encode()).decode()
    response = Client().post(
        reverse("stow-rs"), data=body, HTTP_AUTHORIZATION=f"Basic {token}",
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )
    assert response.status_code == 200, response.content
    created = changes_of(Case.objects.get())
    assert [(action, actor) for action, _, actor in created] == [(LogEntry.Action.CREATE, coordinator)]
    assert created[0][1]["code"][1] == Case.objects.get().code
    assert created[0][1]["institution"][1] == str(coordinator.institution), "related objects by name, not id"
    assert changes_of(Series.objects.get())[0][2] == coordinator


def test_study_lock_through_the_api_is_recorded_with_the_admin(client):
    world = build_world()
    admin_user = AdminFactory()
    login(client, admin_user)
    response = client.post(reverse("reading-api:study-lock", args=[world.study.pk]))
    assert response.status_code == 200
    action, changes, actor = changes_of(world.study)[-1]
    assert actor == admin_user and changes == {"status": [StudyStatus.READING.value, StudyStatus.LOCKED.value]}


def test_study_case_list_changes_are_recorded():
    study = ReaderStudy.objects.create(title="Pilot")
    cases = CaseFactory.create_batch(2)
    definition.set_cases(study, cases)
    entries = LogEntry.objects.get_for_object(study).filter(action=LogEntry.Action.UPDATE)
    recorded = [e.changes_dict.get("cases") for e in entries if "cases" in e.changes_dict]
    assert recorded and set(recorded[-1]["objects"]) == {str(c) for c in cases}


def test_changes_by_the_worker_or_a_command_have_no_actor_and_keys_never_reach_the_trail():
    case = CaseFactory(date_shift_days=-3917)
    case.age = 61
    case.date_shift_days = -2843
    case.patient_key = "f" * 64
    case.save()
    logged = " ".join(str(e.changes) for e in LogEntry.objects.get_for_object(case))
    assert LogEntry.objects.get_for_object(case).order_by("pk").last().actor is None
    assert "61" in logged
    for secret in ("date_shift_days", "patient_key", "3917", "2843", "f" * 64):
        assert secret not in logged


def test_user_password_changes_are_not_logged_but_role_changes_are():
    reader = ReaderFactory()
    reader.set_password("another-password-456")
    reader.role = Role.COORDINATOR
    reader.save()
    changes = LogEntry.objects.get_for_object(reader).order_by("pk").last().changes_dict
    assert changes == {"role": [Role.READER.value, Role.COORDINATOR.value]}
    assert "password" not in str(LogEntry.objects.get_for_object(reader).values_list("changes", flat=True))


def test_only_named_fields_are_audited():
    from django.apps import apps

    for label, spec in AUDITED.items():
        names = {f.name for f in apps.get_model(label)._meta.get_fields()}
        assert set(spec["fields"]) | set(spec.get("m2m", [])) <= names, label
    assert "patient_key" not in AUDITED["imaging.Case"]["fields"]
    assert "date_shift_days" not in AUDITED["imaging.Case"]["fields"]
    assert "password" not in AUDITED["accounts.User"]["fields"]


def test_admins_read_the_trail_and_nobody_edits_it(client):
    case = CaseFactory()
    case.age = 40
    case.save()
    entry = LogEntry.objects.get_for_object(case).order_by("pk").last()
    login(client, AdminFactory())
    listing = client.get(reverse("admin:auditlog_logentry_changelist"))
    assert listing.status_code == 200 and case.code in listing.content.decode()
    assert client.get(reverse("admin:auditlog_logentry_change", args=[entry.pk])).status_code == 200
    assert client.post(reverse("admin:auditlog_logentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:auditlog_logentry_add")).status_code == 403
    assert LogEntry.objects.filter(pk=entry.pk).exists()
    history = client.get(reverse("admin:imaging_case_auditlog", args=[case.pk]))
    assert history.status_code == 200 and "40" in history.content.decode()


def test_coordinators_see_their_own_sites_history_only_and_readers_nothing(client):
    coordinator = CoordinatorFactory()
    own, other = CaseFactory(institution=coordinator.institution), CaseFactory(institution=InstitutionFactory())
    for case in (own, other):
        case.tumour_type = "glioblastoma"
        case.save()
    login(client, coordinator)
    assert client.get(reverse("admin:auditlog_logentry_changelist")).status_code == 403
    assert client.get(reverse("admin:imaging_case_auditlog", args=[own.pk])).status_code == 200
    response = client.get(reverse("admin:imaging_case_auditlog", args=[other.pk]))
    assert response.status_code == 404 and other.code not in response.content.decode()
    assert client.get(reverse("admin:studies_readerstudy_auditlog", args=[1])).status_code in (403, 404)
    client.logout()
    login(client, ReaderFactory())
    response = client.get(reverse("admin:imaging_case_auditlog", args=[own.pk]))
    assert response.status_code == 302 and "login" in response.url
