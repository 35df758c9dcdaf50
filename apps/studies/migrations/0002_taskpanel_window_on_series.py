from django.db import migrations


def windows_to_series(apps, schema_editor):
    """Keeps the windows already computed at task opening: they are the series' (same function, whole volume)."""
    TaskPanel = apps.get_model("studies", "TaskPanel")
    Series = apps.get_model("imaging", "Series")
    known = (
        TaskPanel.objects.filter(window_center__isnull=False, window_width__isnull=False)
        .values_list("series_id", "window_center", "window_width")
        .order_by("series_id")
        .distinct()
    )
    for series_id, center, width in known:
        Series.objects.filter(pk=series_id, window_center__isnull=True).update(
            window_center=center, window_width=width
        )


class Migration(migrations.Migration):

    dependencies = [
        ("imaging", "0003_series_display_window"),
        ("studies", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(windows_to_series, migrations.RunPython.noop),
        migrations.RemoveField(model_name="taskpanel", name="window_center"),
        migrations.RemoveField(model_name="taskpanel", name="window_width"),
    ]
