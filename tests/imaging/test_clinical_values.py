"""Clinical values of a case (age, sex, WHO grade, IDH, 1p/19q, tumour type) are validated at every door: the
metadata CSV on the Cases page, the API, the admin, the model, and the database itself."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.urls import reverse

from apps.imaging.models import Case
from tests.factories import AdminFactory, CaseFactory, CoordinatorFactory
from tests.studies.conftest import build_world

pytestmark = pytest.mark.django_db

HEADER = "case_code,age,sex,tumour_type,who_grade,idh_status,codeletion_1p19q\n"


def upload(client, text: str) -> list[str]:
    csv_file = io.BytesIO(text.encode())
    csv_file.name = "clinical.csv"
    response = client.post(reverse("imaging:case_metadata_import"), {"csv_file": csv_file}, follow=True)
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]


def patients_export(client, study) -> pd.DataFrame:
    response = client.get(f"/analysis/studies/{study.pk}/exports/patients.csv")
    assert response.status_code == 200
    return pd.read_csv(io.StringIO(b"".join(response.streaming_content).decode()), dtype=str, keep_default_na=False)


def test_bad_csv_rows_each_get_a_clear_error_and_nothing_changes_then_the_fixed_file_reaches_the_export(client):
    world = build_world(cases_per_site=4, sequences=("T2W",))
    admin = AdminFactory()
    client.force_login(admin)
    codes = [c.code for c in world.cases]
    bad = HEADER + "".join([
        f"{codes[0]},1000000000000,M,glioblastoma,4,wildtype,intact\n",   # line 2: the probe's age
        f"{codes[1]},²,F,astrocytoma,3,mutant,intact\n",                     # line 3: a digit that int() refuses
        f"{codes[2]},45.5,F,astrocytoma,3,mutant,intact\n",                  # line 4: not whole years
        f"{codes[3]},-3,X,astrocytoma,5,maybe,partial\n",                    # line 5: four bad values
        f"{codes[4]},50,F,{'a' * 101},2,mutant,codeleted\n",                 # line 6: too long, not cut short
        f"{codes[5]},61,M,oligodendroglioma,2,mutant,codeleted\n",           # line 7: good
        f"{codes[5]},62,M,oligodendroglioma,2,mutant,codeleted\n",           # line 8: same case twice
    ])
    messages = upload(client, bad)
    text = "\n".join(messages)
    assert "Line 2: age '1000000000000'" in text
    assert "Line 3: age '²'" in text
    assert "Line 4: age '45.5'" in text
    assert "Line 5: age '-3'" in text and "Line 5: sex 'X'" in text and "Line 5: who_grade '5'" in text
    assert "Line 5: idh_status 'maybe'" in text and "Line 5: codeletion_1p19q 'partial'" in text
    assert "Line 6: tumour_type is longer than 100 characters" in text
    assert f"Line 8: case {codes[5]} is already given on line 7" in text
    assert not any(m.startswith("Line 7") for m in messages)
    assert "Nothing was changed" in text
    assert set(Case.objects.values_list("age", flat=True)) == {None}

    good = HEADER + "".join([
        f"{codes[0]},120,M,glioblastoma,IV,wildtype,intact\n",
        f"{codes[1]},0,female,astrocytoma,3,mutant,intact\n",
        f"{codes[5]},61,M,oligodendroglioma,2,mutant,codeleted\n",
    ])
    assert "Clinical metadata updated for 3 case(s)." in upload(client, good)
    frame = patients_export(client, world.study).set_index("case_id")
    assert frame.loc[codes[0], "age"] == "120" and frame.loc[codes[0], "who_grade"] == "4"
    assert frame.loc[codes[1], "age"] == "0" and frame.loc[codes[1], "sex"] == "F"
    assert frame.loc[codes[5], "codeletion_1p19q"] == "codeleted"
    assert set(frame["age"]) == {"NA", "0", "61", "120"}  # NA: not known, never an impossible number


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"age": 10**12}, "age"),
        ({"age": 121}, "age"),
        ({"age": -1}, "age"),
        ({"age": 45.5}, "age"),
        ({"sex": "X"}, "sex"),
        ({"who_grade": 5}, "who_grade"),
        ({"idh_status": "maybe"}, "idh_status"),
        ({"codeletion_1p19q": "partial"}, "codeletion_1p19q"),
        ({"tumour_type": "a" * 101}, "tumour_type"),
    ],
)
def test_api_refuses_impossible_clinical_values(client, body, field):
    coordinator = CoordinatorFactory()
    case = CaseFactory(institution=coordinator.institution, age=40)
    client.force_login(coordinator)
    response = client.patch(reverse("case-detail", args=[case.pk]), body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    case.refresh_from_db()
    assert case.age == 40


def test_api_accepts_the_limits(client):
    coordinator = CoordinatorFactory()
    case = CaseFactory(institution=coordinator.institution)
    client.force_login(coordinator)
    for age in (0, 120):
        response = client.patch(reverse("case-detail", args=[case.pk]), {"age": age, "who_grade": 1},
                                content_type="application/json")
        assert response.status_code == 200, response.content
        case.refresh_from_db()
        assert case.age == age


def test_admin_refuses_an_impossible_age(client):
    admin = AdminFactory()
    case = CaseFactory(age=40)
    client.force_login(admin)
    url = reverse("admin:imaging_case_change", args=[case.pk])
    form = {"age": str(10**12), "sex": "M", "tumour_type": "", "who_grade": "", "idh_status": "",
            "codeletion_1p19q": "", "series-TOTAL_FORMS": "0", "series-INITIAL_FORMS": "0"}
    response = client.post(url, form)
    assert response.status_code == 200  # the form again, with its error
    assert "Ensure this value is less than or equal to 120." in response.content.decode()
    case.refresh_from_db()
    assert case.age == 40


def test_model_validation_and_database_constraints():
    case = CaseFactory()
    for field, value in (("age", 121), ("sex", "X"), ("who_grade", 5), ("idh_status", "maybe"),
                         ("codeletion_1p19q", "partial")):
        bad = Case(**{**{f.attname: getattr(case, f.attname) for f in Case._meta.concrete_fields}, field: value})
        with pytest.raises(ValidationError) as raised:
            bad.full_clean(validate_unique=False, validate_constraints=False)
        assert field in raised.value.message_dict
        with pytest.raises(IntegrityError), transaction.atomic():
            Case.objects.filter(pk=case.pk).update(**{field: value})
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        Case.objects.filter(pk=case.pk).update(age=10**12)


@pytest.mark.django_db(transaction=True)
def test_migration_clears_impossible_stored_values_and_records_why():
    from auditlog.models import LogEntry
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    case = CaseFactory(age=50, sex="F", who_grade=2)
    good = CaseFactory(age=70, sex="M", who_grade=4)
    executor = MigrationExecutor(connection)
    executor.migrate([("imaging", "0006_upload_outcomes_holds_items")])
    with connection.cursor() as cursor:  # what the unchecked columns accepted (500 fits PostgreSQL's smallint too)
        cursor.execute("UPDATE imaging_case SET age = 500, sex = 'X', who_grade = 7, idh_status = 'maybe' "
                       "WHERE id = %s", [case.pk])
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    case.refresh_from_db()
    good.refresh_from_db()
    assert (case.age, case.sex, case.who_grade, case.idh_status) == (None, "", None, "")
    assert (good.age, good.sex, good.who_grade) == (70, "M", 4)
    entry = LogEntry.objects.get_for_object(case).latest("pk")
    assert entry.changes_dict == {"age": ["500", "None"], "sex": ["X", ""], "who_grade": ["7", "None"],
                                  "idh_status": ["maybe", ""]}
    assert "Impossible value cleared" in entry.additional_data["reason"]
    assert not LogEntry.objects.get_for_object(good).filter(additional_data__has_key="reason").exists()
