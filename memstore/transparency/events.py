"""Which registry events go into the log, and what each entry says (SPEC 16.2).

Subscribers of the packs and accounts domains; each runs inside the
transaction that makes the event, so the entry commits with it. Not here:
the tree (:mod:`.services`).
"""

from __future__ import annotations

import json
from typing import Any

from ..accounts.models import SigningKey
from ..packs.models import PackVersion
from ..tuf.models import KeyStatement
from .models import LogEntry
from .services import append_event

__all__ = [
    "on_key_saved",
    "on_key_statement_saved",
    "on_namespace_transferred",
    "on_version_published",
    "on_version_yanked",
    "record_namespace_transfer",
]


def _version_fields(version: PackVersion) -> dict[str, Any]:
    pack = version.pack
    return {
        "pack": f"{pack.namespace.name}/{pack.name}",
        "version": version.version,
        "manifest_sha256": version.manifest_sha256,
    }


def on_version_published(*, version: PackVersion) -> None:
    fields = _version_fields(version)
    append_event(
        kind="publish", namespace=version.pack.namespace.name,
        subject=version.manifest_sha256, fields=fields,
    )  # fmt: skip


def on_version_yanked(sender: object, *, version: PackVersion, **_: Any) -> None:
    fields = _version_fields(version)
    append_event(
        kind="yank", namespace=version.pack.namespace.name, subject=version.manifest_sha256,
        fields={**fields, "reason": version.yanked_reason},
    )  # fmt: skip


def on_key_saved(
    sender: object,
    *,
    instance: SigningKey,
    created: bool,
    **_: Any,
) -> None:
    namespace = instance.namespace.name
    fields = {"keyid": instance.keyid, "public_key": instance.public_key}
    if created:
        append_event(
            kind="key.register", namespace=namespace, subject=instance.keyid, fields=fields
        )
    elif instance.revoked_at is not None and not _revocation_logged(namespace, instance.keyid):
        append_event(
            kind="key.revoke", namespace=namespace, subject=instance.keyid,
            fields={**fields, "revoked_at": instance.revoked_at.isoformat(),
                    "reason": instance.revocation_reason},
        )  # fmt: skip


def on_key_statement_saved(sender: object, *, instance: KeyStatement, **_: Any) -> None:
    """A compromise declaration (TUF's key statement) is a revocation with its start time."""
    if instance.compromised_since is None:
        return
    namespace, since = instance.namespace.name, instance.compromised_since.isoformat()
    last = (
        LogEntry.objects.filter(kind="key.revoke", namespace=namespace, subject=instance.keyid)
        .order_by("-index")
        .first()
    )
    if last is not None and json.loads(bytes(last.body)).get("compromised_since") == since:
        return
    key = SigningKey.objects.filter(namespace=instance.namespace, keyid=instance.keyid).first()
    append_event(
        kind="key.revoke", namespace=namespace, subject=instance.keyid,
        fields={"keyid": instance.keyid, "public_key": key.public_key if key else "",
                "compromised_since": since, "reason": "compromised"},
    )  # fmt: skip


def _revocation_logged(namespace: str, keyid: str) -> bool:
    return LogEntry.objects.filter(kind="key.revoke", namespace=namespace, subject=keyid).exists()


def record_namespace_transfer(*, namespace: str, from_owner: str, to_owner: str) -> None:
    """For the namespace-transfer service, inside its transaction."""
    append_event(
        kind="namespace.transfer", namespace=namespace, subject=namespace,
        fields={"from": from_owner, "to": to_owner},
    )  # fmt: skip


def on_namespace_transferred(
    sender: object, *, namespace: Any, from_owner: str, to_owner: str, **_: Any
) -> None:
    """``accounts.services.namespace_transferred``: runs inside the transfer's transaction."""
    record_namespace_transfer(namespace=namespace.name, from_owner=from_owner, to_owner=to_owner)
