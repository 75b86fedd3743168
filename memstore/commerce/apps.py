from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "memstore.commerce"
    label = "commerce"
    verbose_name = "Commerce"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the payment system checks
