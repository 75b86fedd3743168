from django.apps import AppConfig


class PacksConfig(AppConfig):
    name = "memstore.packs"
    label = "packs"
    default_auto_field = "django.db.models.BigAutoField"
