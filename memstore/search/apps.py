from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "memstore.search"
    label = "search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: models may be imported only once Django's
        # app registry is ready (the app-loading rule, not an import cycle).
        # packs sits below search and cannot import it; search subscribes instead.
        from ..packs.services import subscribe
        from .services import pack_document_refresh

        subscribe(versions_changed=pack_document_refresh)
