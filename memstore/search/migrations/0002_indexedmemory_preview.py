"""``IndexedMemory.preview``: which memories a paid pack shows before purchase.

Search matches a paid pack's memories for a stranger only when they are previews
(issue 17 item 6), so the rows indexed before this field are marked from their
version's card here, by the same rule ingestion now applies
(``memstore.packs.cards.preview_records``).
"""

from typing import Any

from django.db import migrations, models


def mark_previews(apps: Any, schema_editor: Any) -> None:
    from memstore.packs.cards import card_parse, preview_records

    IndexedMemory = apps.get_model("search", "IndexedMemory")
    PackVersion = apps.get_model("packs", "PackVersion")
    versions = IndexedMemory.objects.values_list("version_id", flat=True).distinct()
    for version in PackVersion.objects.filter(pk__in=versions).only("id", "description"):
        rows = IndexedMemory.objects.filter(version_id=version.pk).order_by("id")
        ids = list(rows.values_list("record_id", flat=True))
        chosen = preview_records(card_parse(version.description or ""), ids)
        rows.filter(record_id__in=chosen).update(preview=True)


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="indexedmemory",
            name="preview",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_previews, migrations.RunPython.noop),
    ]
