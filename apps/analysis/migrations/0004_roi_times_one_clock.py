"""ROI created_at/updated_at from one clock reading; existing rows with updated_at < created_at are raised to
created_at before the database starts checking the order."""

import django.db.models.expressions
from django.db import migrations, models

import apps.audit.timestamps


def fix_order(apps, schema_editor):
    RoiMeasurement = apps.get_model("analysis", "RoiMeasurement")
    RoiMeasurement.objects.filter(updated_at__lt=models.F("created_at")).update(updated_at=models.F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("analysis", "0003_export_kind_score_audit"),
    ]

    operations = [
        migrations.RunPython(fix_order, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="roimeasurement",
            name="created_at",
            field=apps.audit.timestamps.CreatedAtField(blank=True, editable=False),
        ),
        migrations.AlterField(
            model_name="roimeasurement",
            name="updated_at",
            field=apps.audit.timestamps.UpdatedAtField(
                blank=True, editable=False, help_text="Last redrawn; equals created_at until then."
            ),
        ),
        migrations.AddConstraint(
            model_name="roimeasurement",
            constraint=models.CheckConstraint(
                condition=models.Q(("updated_at__gte", django.db.models.expressions.F("created_at"))),
                name="roi_updated_at_not_before_created_at",
            ),
        ),
    ]
