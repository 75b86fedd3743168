from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "memstore.ingest"
    label = "ingest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once Django's
        # app registry is ready (the app-loading rule, not an import cycle).
        # packs sits below ingest and cannot import it; ingest subscribes instead.
        from ..packs.services import subscribe
        from .tasks import version_published

        subscribe(published=version_published)
