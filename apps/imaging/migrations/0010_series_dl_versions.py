"""DL versions per source (issue 11, item 2): a DL series names its conventional series and the source that made it
(model and factor, or vendor). The one-to-one `counterpart` link is copied here; 0011 removes it."""

import django.db.models.deletion
from django.db import migrations, models

BUILT_IN_NAME = "CE U-Net (built in)"  # apps.enhancement_models.services.BUILT_IN_NAME at the time of writing


def copy_counterparts(apps, schema_editor):
    """Each linked DL series gets its conventional series and its source: the vendor, or the model and factor of the
    job that made it (a job from before the registry names its built-in model by version only)."""
    Series = apps.get_model("imaging", "Series")
    EnhancementJob = apps.get_model("imaging", "EnhancementJob")
    EnhancementModel = apps.get_model("enhancement_models", "EnhancementModel")
    built_in = {m.version: m for m in EnhancementModel.objects.filter(built_in=True)}
    jobs = {job.output_series_id: job for job in EnhancementJob.objects.filter(output_series__isnull=False)}
    for dl in Series.objects.filter(version="dl").order_by("pk"):
        job = jobs.get(dl.pk)
        if dl.counterpart_id is not None:
            conventional_id = dl.counterpart_id
        elif job is not None and dl.status == "rejected":  # unlinked when a vendor series was attached
            conventional_id = job.series_id
        else:
            continue
        model, factor = None, None
        if dl.source == "enhanced" and job is not None:
            model = job.model or built_in.get(job.model_version)
            factor = job.noise_reduction_factor if model is not None else None
        Series.objects.filter(pk=dl.pk).update(conventional_id=conventional_id, dl_model=model, dl_factor=factor)
    _check_now(schema_editor)


def restore_counterparts(apps, schema_editor):
    """Back to one DL series per conventional series: the first linked one (by id) of each is its counterpart."""
    Series = apps.get_model("imaging", "Series")
    paired = set()
    for dl in Series.objects.filter(version="dl", conventional__isnull=False).exclude(status="rejected").order_by("pk"):
        if dl.conventional_id in paired:
            continue
        paired.add(dl.conventional_id)
        Series.objects.filter(pk=dl.pk).update(counterpart_id=dl.conventional_id)
        Series.objects.filter(pk=dl.conventional_id).update(counterpart_id=dl.pk)
    _check_now(schema_editor)


def _check_now(schema_editor):
    """PostgreSQL checks the foreign keys of the rows just changed now, not at commit: the same migration alters the
    table next when it is reversed, which PostgreSQL refuses while those checks are pending."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('enhancement_models', '0001_initial'),
        ('imaging', '0009_enhancementjob_provenance'),
    ]

    operations = [
        migrations.AddField(
            model_name='series',
            name='conventional',
            field=models.ForeignKey(blank=True, help_text='For a DL series: the conventional series it is a version of (empty while a vendor series is held).', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='dl_versions', to='imaging.series'),
        ),
        migrations.AddField(
            model_name='series',
            name='dl_factor',
            field=models.FloatField(blank=True, help_text='For a DL series the engine made: the noise-reduction factor of its source.', null=True),
        ),
        migrations.AddField(
            model_name='series',
            name='dl_model',
            field=models.ForeignKey(blank=True, help_text='For a DL series the engine made: the registered model of its source.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='enhancement_models.enhancementmodel'),
        ),
        migrations.RunPython(copy_counterparts, restore_counterparts),
    ]
