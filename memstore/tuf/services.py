"""Writes to the TUF repository: sync a namespace after it changed, endorse, compromise.

The repository's state is derived from the database (packs, versions, keys,
:class:`~.models.KeyStatement`): :func:`repository_sync` recomputes the roles
of the namespaces named, re-signs only those that differ, and then snapshot
and timestamp -- idempotent, so a sync that runs twice changes nothing.
Syncs are serialised by a PostgreSQL advisory lock (versions must be
consecutive). It runs after the publish, yank or key change commits
(``transaction.on_commit``), in the request: signing is a few ms.

:func:`repository_init` creates root v1 from the given root signers;
:func:`ensure_repository` does so with a demo root key when
``MEMSTORE_TUF_DEMO`` is on and no repository exists yet.

Not here: building or signing (:mod:`.repository`), serving (:mod:`.apis`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from securesystemslib.signer import Signer

from protocol import PublicKey, Signature
from protocol.endorsement import endorsement_valid

from ..accounts.actor import Actor, admin_scope
from ..accounts.models import Membership, Namespace, Role, SigningKey
from ..accounts.selectors import has_role
from ..errors import ConflictError, ForbiddenError, InvalidRequestError, NotFoundError
from ..packs.models import Pack, PackVersion
from .keys import DEMO_ROOT, generate_key_file, key_dir, load_signer, online_signer
from .models import KeyStatement, MetadataFile
from .repository import PublisherKey, Repository, VersionTarget
from .selectors import latest_files

__all__ = [
    "TufNotConfiguredError",
    "ensure_repository",
    "key_compromised",
    "key_endorse",
    "provide_log_keys",
    "repository_init",
    "repository_sync",
    "root_rotate",
]

log = logging.getLogger(__name__)
_LOCK = 0x7475_6600  # "tuf": the advisory lock of every repository write


class TufNotConfiguredError(ConflictError):
    code = "tuf.not_configured"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])


def _save(repo: Repository) -> None:
    """Store every file the repository wrote (``timestamp.json`` as its version)."""
    for name, data in repo.files.items():
        if name == "timestamp.json":
            assert repo.timestamp is not None
            role, version = "timestamp", repo.timestamp.signed.version
        else:
            number, role = name[: -len(".json")].split(".", 1)
            version = int(number)
        MetadataFile.objects.update_or_create(role=role, version=version, defaults={"body": data})
    repo.files.clear()


#: Where root metadata gets the transparency log's keys (``ed25519:<base64>``): set by the
#: log's app (it sits above this one, so this module cannot import it).
_log_keys: Callable[[], list[str]] = list


def provide_log_keys(source: Callable[[], list[str]]) -> None:
    """Name the log's tree-head keys in every root signed from now on (SPEC 16.2)."""
    global _log_keys
    _log_keys = source


def repository_init(*, root_signers: list[Signer], threshold: int = 1) -> None:
    """Root v1 over ``root_signers`` (refused if a repository exists), then every namespace;
    the root names the log's key, so clients verify tree heads against the pinned root."""
    with transaction.atomic():
        _lock()
        if MetadataFile.objects.filter(role="root").exists():
            raise ConflictError("the TUF repository exists already", code="tuf.exists")
        now = timezone.now()
        repo = Repository.create(
            root_signers=root_signers, threshold=threshold, online=online_signer(), now=now,
            log_keys=_log_keys(),
        )  # fmt: skip
        _save(repo)
    repository_sync()


def ensure_repository() -> bool:
    """Whether a repository exists, creating a demo one if ``MEMSTORE_TUF_DEMO`` allows."""
    if MetadataFile.objects.filter(role="root").exists():
        return True
    if not settings.MEMSTORE_TUF_DEMO:
        return False
    signer = load_signer(generate_key_file(key_dir() / DEMO_ROOT))
    with contextlib.suppress(ConflictError):  # another process made it first
        repository_init(root_signers=[signer])
    return True


def _load() -> Repository:
    files = latest_files()
    if "root.json" not in files:
        raise TufNotConfiguredError("no TUF repository: run manage.py tuf_init")
    return Repository.load(online_signer(), files)


def _targets(namespace: Namespace) -> list[VersionTarget]:
    versions = PackVersion.objects.filter(
        pack__namespace=namespace, deleted_at__isnull=True
    ).select_related("pack")
    return [
        VersionTarget(
            name=f"{namespace.name}/{v.pack.name}",
            version=v.version,
            manifest_sha256=v.manifest_sha256,
            manifest_length=len(bytes(v.manifest_bytes)),
            published_at=_iso(v.published_at) or "",
            yanked=v.yanked,
            yanked_reason=v.yanked_reason,
            pack_sha256=v.file_sha256,
            pack_size=v.file_size,
        )
        for v in versions
    ]


def _keys(namespace: Namespace) -> list[PublisherKey]:
    statements = {s.keyid: s for s in KeyStatement.objects.filter(namespace=namespace)}
    keys = []
    for key in SigningKey.objects.filter(namespace=namespace).order_by("created_at", "id"):
        st = statements.get(key.keyid)
        endorsement = (
            {"keyid": st.endorsed_by, "sig": st.endorsement} if st and st.endorsement else None
        )
        keys.append(
            PublisherKey(
                public_key=key.public_key,
                keyid=key.keyid,
                created_at=_iso(key.created_at) or "",
                revoked_at=_iso(key.revoked_at),
                compromised_since=_iso(st.compromised_since) if st else None,
                endorsement=endorsement,
            )
        )
    return keys


def _owners(namespace: Namespace) -> list[str]:
    owners = Membership.objects.filter(namespace=namespace, role=Role.OWNER)
    return sorted(owners.values_list("user__username", flat=True))


def repository_sync(*, namespaces: Iterable[str] | None = None) -> bool:
    """Bring the roles of ``namespaces`` (default: all) in line with the database.

    Returns whether a new snapshot was signed. A registry with no repository
    (and no demo mode) is left alone.
    """
    if not ensure_repository():
        return False
    with transaction.atomic():
        _lock()
        repo = _load()
        now = timezone.now()
        chosen = Namespace.objects.all()
        if namespaces is not None:
            chosen = chosen.filter(name__in=list(namespaces))
        changed = False
        for ns in chosen.order_by("name"):
            if not ns.keys.exists() and not Pack.objects.filter(namespace=ns).exists():
                continue
            changed |= repo.set_namespace(ns.name, _targets(ns), _keys(ns), now, owners=_owners(ns))
        if changed or repo.snapshot is None or repo.needs_refresh(now):
            repo.refresh_snapshot(now)
        _save(repo)
    return changed


def timestamp_fresh() -> None:
    """Re-sign snapshot and timestamp when they are past half their lifetime."""
    with transaction.atomic():
        _lock()
        repo = _load()
        now = timezone.now()
        if repo.needs_refresh(now):
            repo.refresh_snapshot(now)
            _save(repo)


def root_rotate(*, old_signers: list[Signer], new_signers: list[Signer], threshold: int) -> int:
    """A new root signed by the old root keys and the new ones (naming the log's current
    key: a registry whose root predates that field gains it here); its version."""
    with transaction.atomic():
        _lock()
        repo = _load()
        repo.rotate_root(
            old_signers=old_signers, new_signers=new_signers, threshold=threshold,
            now=timezone.now(), log_keys=_log_keys() or None,
        )  # fmt: skip
        _save(repo)
        return repo.root.signed.version


# --------------------------------------------------------------------------- key statements


def _require_admin(actor: Actor, namespace: Namespace) -> None:
    """A maintainer with ``admin:NS``, as for registering or revoking a key."""
    if not has_role(user=actor.user, namespace=namespace, at_least=Role.MAINTAINER):
        raise ForbiddenError(f"you need the maintainer role in namespace {namespace.name!r}")
    if not actor.has_scope(admin_scope(namespace.name)):
        raise ForbiddenError(f"this token lacks the admin:{namespace.name} scope")


def _key(namespace: Namespace, keyid: str) -> SigningKey:
    try:
        return SigningKey.objects.get(namespace=namespace, keyid=keyid)
    except SigningKey.DoesNotExist:
        raise NotFoundError(f"{namespace.name} has no key {keyid}") from None


def key_endorse(
    *, actor: Actor, namespace: Namespace, keyid: str, signature: Signature
) -> KeyStatement:
    """Store an older key's endorsement of key ``keyid`` (checked here, again by clients)."""
    _require_admin(actor, namespace)
    key = _key(namespace, keyid)
    endorser = _key(namespace, signature.keyid)
    if endorser.keyid == key.keyid or not endorsement_valid(
        namespace.name, PublicKey.from_text(key.public_key), signature,
        PublicKey.from_text(endorser.public_key),
    ):  # fmt: skip
        raise InvalidRequestError(
            "the endorsement does not verify under that key", code="tuf.bad_endorsement"
        )
    with transaction.atomic():
        statement, _ = KeyStatement.objects.update_or_create(
            namespace=namespace, keyid=keyid,
            defaults={
                "endorsed_by": endorser.keyid,
                "endorsement": base64.b64encode(signature.value).decode("ascii"),
            },
        )  # fmt: skip
        transaction.on_commit(functools.partial(_sync_quietly, namespace.name))
    return statement


def key_compromised(
    *, actor: Actor, namespace: Namespace, keyid: str, since: datetime
) -> KeyStatement:
    """Declare key ``keyid`` compromised since ``since``: versions it signed from then on are
    refused by clients; older ones stay installable. Revokes the key if it is not yet."""
    _require_admin(actor, namespace)
    key = _key(namespace, keyid)
    with transaction.atomic():
        if key.revoked_at is None or key.revoked_at > timezone.now():
            SigningKey.objects.filter(pk=key.pk).update(
                revoked_at=timezone.now(), revocation_reason="compromised"
            )
        statement, _ = KeyStatement.objects.update_or_create(
            namespace=namespace, keyid=keyid, defaults={"compromised_since": since}
        )
        transaction.on_commit(functools.partial(_sync_quietly, namespace.name))
    return statement


# --------------------------------------------------------------------------- subscribers


def _sync_quietly(namespace: str) -> None:
    """A sync after a commit: a failure is logged, never undoes what was committed
    (the next change or ``manage.py tuf_sync`` brings the repository up to date)."""
    try:
        repository_sync(namespaces=[namespace])
    except Exception:
        log.exception("TUF sync of namespace %s failed", namespace)


def on_version_published(*, version: PackVersion) -> None:
    transaction.on_commit(functools.partial(_sync_quietly, version.pack.namespace.name))


def on_versions_changed(*, pack_id: int) -> None:
    namespace = Pack.objects.select_related("namespace").get(pk=pack_id).namespace.name
    _sync_quietly(namespace)


def on_key_saved(*, instance: SigningKey, **_: Any) -> None:
    transaction.on_commit(functools.partial(_sync_quietly, instance.namespace.name))


def on_namespace_transferred(*, namespace: Namespace, **_: Any) -> None:
    """The delegation names the owners (:data:`.repository.OWNERS`): re-sign it after commit."""
    transaction.on_commit(functools.partial(_sync_quietly, namespace.name))
