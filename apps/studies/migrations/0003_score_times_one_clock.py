"""Scores get their own created_at, stamped from the same clock reading as updated_at and the audit entry.

Existing rows: created_at is the earlier of the score's first audit entry and its updated_at (a score never
revised had its audit entry written a few microseconds after the row, so it gets created == updated); an
updated_at before created_at is raised to created_at; a task submitted "before" it was started gets
submitted_at = started_at. Then the database checks both orders.
"""

import django.db.models.expressions
from django.db import migrations, models

import apps.audit.timestamps


def backfill(apps, schema_editor):
    Score = apps.get_model("studies", "Score")
    ScoreAudit = apps.get_model("studies", "ScoreAudit")
    ReadingTask = apps.get_model("studies", "ReadingTask")
    first = {}
    for score_id, changed_at in ScoreAudit.objects.order_by("score_id", "changed_at", "pk").values_list(
        "score_id", "changed_at"
    ):
        first.setdefault(score_id, changed_at)
    batch = []
    for score in Score.objects.only("pk", "updated_at").iterator(chunk_size=2000):
        audited = first.get(score.pk)
        score.created_at = min(audited, score.updated_at) if audited else score.updated_at
        score.updated_at = max(score.updated_at, score.created_at)
        batch.append(score)
        if len(batch) >= 2000:
            Score.objects.bulk_update(batch, ["created_at", "updated_at"])
            batch = []
    Score.objects.bulk_update(batch, ["created_at", "updated_at"])
    ReadingTask.objects.filter(submitted_at__lt=models.F("started_at")).update(submitted_at=models.F("started_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("studies", "0002_taskpanel_window_on_series"),
    ]

    operations = [
        migrations.AddField(
            model_name="score",
            name="created_at",
            field=models.DateTimeField(null=True, editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="score",
            name="created_at",
            field=apps.audit.timestamps.CreatedAtField(
                blank=True, editable=False, help_text="First saved; the time of its first audit entry."
            ),
        ),
        migrations.AlterField(
            model_name="score",
            name="updated_at",
            field=apps.audit.timestamps.UpdatedAtField(
                blank=True, editable=False, help_text="Last changed; equals created_at until the score is revised."
            ),
        ),
        migrations.AlterField(
            model_name="scoreaudit",
            name="changed_at",
            field=apps.audit.timestamps.CreatedAtField(
                blank=True, editable=False,
                help_text="The same instant as the score's created_at or updated_at it records.",
            ),
        ),
        migrations.AddConstraint(
            model_name="readingtask",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("submitted_at__isnull", True), ("started_at__isnull", True),
                    ("submitted_at__gte", django.db.models.expressions.F("started_at")), _connector="OR",
                ),
                name="task_submitted_not_before_started",
            ),
        ),
        migrations.AddConstraint(
            model_name="score",
            constraint=models.CheckConstraint(
                condition=models.Q(("updated_at__gte", django.db.models.expressions.F("created_at"))),
                name="score_updated_at_not_before_created_at",
            ),
        ),
    ]
