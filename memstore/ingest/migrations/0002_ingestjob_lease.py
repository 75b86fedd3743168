"""The lease of a running job (worker, leased_until) and its progress count."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ingestjob",
            name="progress",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="ingestjob",
            name="worker",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="ingestjob",
            name="leased_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
