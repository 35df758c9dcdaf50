"""The database checks every clinical value of a case (age 0-120 whole years, sex, WHO grade, IDH, 1p/19q).

Rows stored before the checks existed (SQLite never range-checked: an age of 10^12 was accepted) are repaired
first: an impossible value becomes "not known" (None or empty), and each repair is written to the audit trail
with the old value and the reason, so a coordinator can look up and re-enter the right value.
"""

import django.core.validators
from django.db import migrations, models

AGE_MAX = 120
SEX = {"F", "M", "O", ""}
GRADES = {1, 2, 3, 4}
IDH = {"", "mutant", "wildtype", "unknown"}
CODELETION = {"", "codeleted", "intact", "unknown"}
REASON = "Impossible value cleared when the database began checking clinical values (migration imaging 0007)."


def problems(case) -> dict[str, object]:
    """Field -> the 'not known' value it is reset to, for each impossible value of the case."""
    reset = {}
    if case.age is not None and not 0 <= case.age <= AGE_MAX:
        reset["age"] = None
    if case.sex not in SEX:
        reset["sex"] = ""
    if case.who_grade is not None and case.who_grade not in GRADES:
        reset["who_grade"] = None
    if case.idh_status not in IDH:
        reset["idh_status"] = ""
    if case.codeletion_1p19q not in CODELETION:
        reset["codeletion_1p19q"] = ""
    return reset


def clear_impossible_values(apps, schema_editor):
    Case = apps.get_model("imaging", "Case")
    LogEntry = apps.get_model("auditlog", "LogEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_type = None
    for case in Case.objects.iterator():
        reset = problems(case)
        if not reset:
            continue
        if content_type is None:
            content_type, _ = ContentType.objects.get_or_create(app_label="imaging", model="case")
        changes = {name: [str(getattr(case, name)), str(value)] for name, value in reset.items()}
        for name, value in reset.items():
            setattr(case, name, value)
        case.save(update_fields=list(reset))
        LogEntry.objects.create(
            content_type=content_type, object_pk=str(case.pk), object_id=case.pk, object_repr=case.code,
            action=1, changes=changes, changes_text="", additional_data={"reason": REASON},
        )


class Migration(migrations.Migration):

    dependencies = [
        ("imaging", "0006_upload_outcomes_holds_items"),
        ("institutions", "0001_initial"),
        ("auditlog", "__latest__"),
        ("contenttypes", "__latest__"),
    ]

    operations = [
        migrations.RunPython(clear_impossible_values, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="case",
            name="age",
            field=models.PositiveSmallIntegerField(
                blank=True, help_text="Whole years, 0 to 120; empty when not known.", null=True,
                validators=[django.core.validators.MaxValueValidator(120)],
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="tumour_type",
            field=models.CharField(
                blank=True, help_text="As diagnosed (WHO 2021), e.g. glioblastoma, astrocytoma.", max_length=100
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.CheckConstraint(
                condition=models.Q(("age__isnull", True), models.Q(("age__gte", 0), ("age__lte", 120)),
                                   _connector="OR"),
                name="case_age_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.CheckConstraint(condition=models.Q(("sex__in", ["F", "M", "O", ""])),
                                              name="case_sex_known"),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.CheckConstraint(
                condition=models.Q(("who_grade__isnull", True), ("who_grade__in", (1, 2, 3, 4)), _connector="OR"),
                name="case_who_grade_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.CheckConstraint(
                condition=models.Q(("idh_status__in", ["", "mutant", "wildtype", "unknown"])),
                name="case_idh_status_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="case",
            constraint=models.CheckConstraint(
                condition=models.Q(("codeletion_1p19q__in", ["", "codeleted", "intact", "unknown"])),
                name="case_codeletion_1p19q_known",
            ),
        ),
    ]
