from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "memstore.commerce"
    label = "commerce"
    verbose_name = "Commerce"
    default_auto_field = "django.db.models.BigAutoField"
