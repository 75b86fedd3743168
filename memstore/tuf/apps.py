from django.apps import AppConfig


class TufConfig(AppConfig):
    name = "memstore.tuf"
    label = "tuf"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: models may be imported only once the app registry is ready.
        # packs and accounts sit below tuf and cannot import it; tuf subscribes instead.
        from django.db.models.signals import post_save

        from ..accounts.models import SigningKey
        from ..accounts.services import namespace_transferred
        from ..packs.services import subscribe
        from .services import (
            on_key_saved,
            on_namespace_transferred,
            on_version_published,
            on_versions_changed,
        )

        subscribe(published=on_version_published, versions_changed=on_versions_changed)
        post_save.connect(on_key_saved, sender=SigningKey, dispatch_uid="tuf-key-saved")
        namespace_transferred.connect(on_namespace_transferred, dispatch_uid="tuf-ns-transfer")
