from django.apps import AppConfig


class TransparencyConfig(AppConfig):
    name = "memstore.transparency"
    label = "transparency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # packs and accounts sit below the log and cannot import it; it subscribes to
        # their events instead, which run inside the transaction that makes the event.
        from django.db.models.signals import post_save

        from ..accounts.models import SigningKey
        from ..accounts.services import namespace_transferred
        from ..packs.services import subscribe, version_yanked
        from ..tuf.models import KeyStatement
        from ..tuf.services import provide_log_keys
        from .events import (
            on_key_saved,
            on_key_statement_saved,
            on_namespace_transferred,
            on_version_published,
            on_version_yanked,
        )
        from .services import log_key

        subscribe(published=on_version_published)
        version_yanked.connect(on_version_yanked, dispatch_uid="tlog-version-yanked")
        post_save.connect(on_key_saved, sender=SigningKey, dispatch_uid="tlog-key-saved")
        post_save.connect(
            on_key_statement_saved, sender=KeyStatement, dispatch_uid="tlog-key-statement-saved"
        )
        namespace_transferred.connect(on_namespace_transferred, dispatch_uid="tlog-ns-transfer")
        provide_log_keys(lambda: [log_key().public_key.to_text()])
