from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('imaging', '0010_series_dl_versions'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='series',
            name='counterpart',
        ),
        migrations.AddConstraint(
            model_name='series',
            constraint=models.UniqueConstraint(condition=models.Q(('source', 'enhanced'), models.Q(('status', 'rejected'), _negated=True)), fields=('conventional', 'dl_model', 'dl_factor'), name='one_engine_dl_version_per_source'),
        ),
        migrations.AddConstraint(
            model_name='series',
            constraint=models.UniqueConstraint(condition=models.Q(('source', 'vendor'), models.Q(('status', 'rejected'), _negated=True)), fields=('conventional',), name='one_vendor_dl_version'),
        ),
    ]
