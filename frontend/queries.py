"""Page-shaped reads for the templates, composed from the registry's selectors.

Each function returns small frozen dataclasses the templates render; the
rules (visibility, version selection, entitlement) stay in ``memstore.*``.
Not here: writes, HTTP.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import CharField, Count, F, Func, Max

from memstore.accounts.actor import Actor
from memstore.accounts.models import Namespace, Role, SigningKey, User
from memstore.accounts.selectors import has_role, namespace_keys, namespace_trusted_keys
from memstore.commerce.money import format_money
from memstore.errors import RegistryError
from memstore.packs.cards import card_parse
from memstore.packs.models import Pack, PackVersion
from memstore.packs.selectors import (
    entitlement_active_q,
    packs_visible,
    version_select,
    versions_of,
)
from memstore.tuf.selectors import compromised_since
from protocol import Manifest, MIPError, Signature, SignerCheck, SignerStatus

from . import pack_extras
from .models import FeaturedPack


@dataclass(frozen=True)
class PackCard:
    namespace: str
    name: str
    title: str
    summary: str
    version: str
    price: str
    paid: bool
    license: str
    memory_types: tuple[str, ...]
    tags: tuple[str, ...]
    downloads: int
    published_at: datetime
    private: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARK = re.compile(r"[*_`~]+")


def _summary(text: str, limit: int = 160) -> str:
    """The first paragraph of a Markdown description, as plain text."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "```", "|", "<")):
            if lines:
                break
            continue
        lines.append(line.lstrip("*-+> ").strip() if line[:2] in ("* ", "- ", "+ ", "> ") else line)
    plain = _MD_MARK.sub("", _MD_LINK.sub(r"\1", " ".join(lines)))
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"


def current_version(pack: Pack) -> PackVersion | None:
    try:
        return version_select(pack=pack, spec="*")
    except RegistryError:
        return None


def card_for(pack: Pack, version: PackVersion | None = None) -> PackCard | None:
    version = version or current_version(pack)
    if version is None:
        return None
    return PackCard(
        namespace=pack.namespace.name,
        name=pack.name,
        title=version.title,
        summary=_summary(card_parse(version.description).body),  # not the front matter
        version=version.version,
        price=format_money(version.price_amount_minor, version.price_currency),
        paid=version.is_paid,
        license=version.license,
        memory_types=tuple(version.memory_types),
        tags=tuple(version.tags),
        downloads=pack.download_count,
        published_at=version.published_at,
        private=pack.private,
    )


def _cards(packs: Any, limit: int) -> list[PackCard]:
    out: list[PackCard] = []
    for pack in packs:
        card = card_for(pack)
        if card is not None:
            out.append(card)
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True)
class Home:
    featured: list[PackCard]
    new: list[PackCard]
    popular: list[PackCard]
    pack_count: int


def home(*, actor: Actor, limit: int = 6) -> Home:
    visible = (
        packs_visible(actor=actor)
        .filter(versions__deleted_at__isnull=True, versions__yanked=False)
        .distinct()
    )
    featured_ids = list(FeaturedPack.objects.values_list("pack_id", flat=True))
    if featured_ids:
        by_id = {p.pk: p for p in visible.filter(pk__in=featured_ids)}
        featured = _cards([by_id[i] for i in featured_ids if i in by_id], limit)
    else:  # no editor's picks yet: the most collected packs
        featured = _cards(
            visible.annotate(
                holders=Count("entitlements", filter=entitlement_active_q("entitlements__"))
            )
            .filter(holders__gt=0)
            .order_by("-holders", "id"),
            limit,
        )
    new = _cards(
        visible.annotate(last=Max("versions__published_at")).order_by("-last", "-id")[: limit * 2],
        limit,
    )
    popular = _cards(visible.order_by("-download_count", "-id")[: limit * 2], limit)
    return Home(featured=featured, new=new, popular=popular, pack_count=visible.count())


# --------------------------------------------------------------------------- pack page


@dataclass(frozen=True)
class VersionRow:
    version: str
    published_at: datetime
    yanked: bool
    yanked_reason: str
    sha256: str
    size: int
    price: str
    ingest_status: str
    memories: int
    current: bool


@dataclass(frozen=True)
class CubeRow:
    id: str
    title: str
    memory_type: str
    size: int
    payloads: int
    compatibility: str
    model_detail: str


@dataclass(frozen=True)
class SignerRow:
    keyid: str
    label: str
    status: str  # "verified" | "revoked" | "invalid" | "unknown_key"
    message: str


@dataclass(frozen=True)
class PackPage:
    pack: Pack
    version: PackVersion
    card: PackCard
    card_html: str
    versions: list[VersionRow]
    cubes: list[CubeRow]
    signers: list[SignerRow]
    install_command: str
    is_maintainer: bool
    is_member: bool
    verified: bool
    keywords: tuple[str, ...] = field(default_factory=tuple)
    extras: pack_extras.PageExtras | None = None


def _ingest(version: PackVersion) -> tuple[str, int]:
    job = getattr(version, "ingest", None)
    if job is None:
        return "pending", 0
    return str(job.status), int(job.memory_count)


def _cubes(version: PackVersion) -> list[CubeRow]:
    sizes: dict[str, tuple[int, int]] = {}
    for p in version.payloads.all():
        size, count = sizes.get(p.cube_id, (0, 0))
        sizes[p.cube_id] = (size + p.size, count + 1)
    try:
        manifest = Manifest.from_dict(version.manifest)
    except MIPError:
        return []
    rows = []
    for cube in manifest.cubes:
        size, count = sizes.get(cube.id, (sum(p.size for p in cube.payloads), len(cube.payloads)))
        if cube.model is not None:
            compat = cube.model.model_id
            detail = (
                f"{cube.model.architecture}, {cube.model.dtype}, {cube.model.num_layers} layers, "
                f"{cube.model.num_kv_heads} KV heads x {cube.model.head_dim}"
            )
            if cube.model.weights_sha256:
                detail += f"; weights sha256 {cube.model.weights_sha256[:12]}…"
        elif cube.embedding is not None:
            compat = "any model"
            detail = f"embeddings: {cube.embedding.model} ({cube.embedding.dimension}-d)"
        else:
            compat = "any model"
            detail = "plain text"
        rows.append(
            CubeRow(
                id=cube.id,
                title=cube.title or cube.id,
                memory_type=str(cube.memory_type),
                size=size,
                payloads=count,
                compatibility=compat,
                model_detail=detail,
            )
        )
    return rows


def _signer_message(
    check: SignerCheck, compromised: datetime | None = None, published: datetime | None = None
) -> str:
    revoked_at = check.key.revoked_at if check.key is not None else None
    if compromised is not None and published is not None and check.status in (
        SignerStatus.VERIFIED, SignerStatus.REVOKED,
    ):  # fmt: skip
        if published >= compromised:
            return f"key declared compromised since {compromised:%Y-%m-%d}: this version is refused"
        return (f"valid signature; the key was declared compromised later, since "
                f"{compromised:%Y-%m-%d}: this version stays installable")  # fmt: skip
    if check.status is SignerStatus.UNKNOWN_KEY:
        return "signed by a key this namespace never registered"
    if check.status is SignerStatus.INVALID:
        return "the signature does not verify"
    if check.status is SignerStatus.REVOKED:
        return f"key revoked on {revoked_at:%Y-%m-%d}, before this version"
    if check.revoked_later:
        return (f"valid signature; the key was revoked later, on {revoked_at:%Y-%m-%d}, "
                "not as compromised: this version stays installable")  # fmt: skip
    return "valid signature by an active key"


def _signers(version: PackVersion) -> list[SignerRow]:
    """Each signature as the trust rule judges it at the version's publication time."""
    trusted = namespace_trusted_keys(namespace=version.pack.namespace)
    compromised = compromised_since(namespace=version.pack.namespace)  # SPEC 15.3
    manifest_bytes = bytes(version.manifest_bytes)
    rows = []
    for sig in version.signatures.all():
        known = trusted.get(sig.keyid)
        label = known.label if known is not None else ""
        try:
            check = trusted.check(
                Signature(sig.keyid, base64.b64decode(sig.value_b64), sig.algorithm),
                manifest_bytes,
                at=version.published_at,
            )
        except (MIPError, binascii.Error, ValueError):
            if known is None:
                check = SignerCheck(sig.keyid, SignerStatus.UNKNOWN_KEY)
            else:
                rows.append(
                    SignerRow(sig.keyid, label, "invalid", "the signature could not be checked")
                )
                continue
        since = compromised.get(sig.keyid)
        status = "revoked" if since is not None and version.published_at >= since else (
            check.status.value
        )
        message = _signer_message(check, since, version.published_at)
        rows.append(SignerRow(sig.keyid, label, status, message))
    return rows


def pack_page(*, actor: Actor, pack: Pack, version: str | None = None) -> PackPage | None:
    """Everything the pack page shows; ``None`` when the pack has no version to show."""
    all_versions = versions_of(pack=pack)
    if not all_versions:
        return None
    chosen = None
    if version:
        chosen = next((v for v in all_versions if v.version == version), None)
    current = current_version(pack)
    chosen = chosen or current or all_versions[0]
    chosen = (
        PackVersion.objects.select_related("pack__namespace", "ingest")
        .prefetch_related("payloads", "signatures")
        .get(pk=chosen.pk)
    )
    card = card_for(pack, chosen)
    assert card is not None
    rows = []
    for v in all_versions:
        status, memories = _ingest(v)
        rows.append(
            VersionRow(
                version=v.version,
                published_at=v.published_at,
                yanked=v.yanked,
                yanked_reason=v.yanked_reason,
                sha256=v.file_sha256,
                size=v.file_size,
                price=format_money(v.price_amount_minor, v.price_currency),
                ingest_status=status,
                memories=memories,
                current=current is not None and v.pk == current.pk,
            )
        )
    signers = _signers(chosen)
    extras = pack_extras.page_extras(chosen, all_versions)
    return PackPage(
        pack=pack,
        version=chosen,
        card=card,
        card_html=extras.card.html,
        versions=rows,
        cubes=_cubes(chosen),
        signers=signers,
        install_command=f"memos install {pack.full_name}"
        + ("" if current is not None and chosen.pk == current.pk else f"@{chosen.version}"),
        is_maintainer=actor.user is not None
        and has_role(user=actor.user, namespace=pack.namespace, at_least=Role.MAINTAINER),
        is_member=actor.user is not None
        and has_role(user=actor.user, namespace=pack.namespace, at_least=Role.MEMBER),
        verified=bool(signers) and all(s.status == "verified" for s in signers),
        keywords=tuple(chosen.tags),
        extras=extras,
    )


# --------------------------------------------------------------------------- publisher


@dataclass(frozen=True)
class PublisherPage:
    namespace: Namespace
    packs: list[PackCard]
    keys: list[SigningKey]
    members: int


def publisher_page(*, actor: Actor, namespace: Namespace) -> PublisherPage:
    packs = packs_visible(actor=actor).filter(namespace=namespace).order_by("name")
    return PublisherPage(
        namespace=namespace,
        packs=_cards(packs, 200),
        keys=namespace_keys(namespace=namespace),
        members=namespace.memberships.count(),
    )


# --------------------------------------------------------------------------- dashboard


@dataclass(frozen=True)
class DashboardVersion:
    id: int
    pack: str
    version: str
    published_at: datetime
    ingest_status: str
    memories: int
    error: str
    yanked: bool


def maintained_namespaces(*, user: User) -> list[Namespace]:
    return [
        m.namespace
        for m in user.memberships.select_related("namespace").order_by("namespace__name")
        if has_role(user=user, namespace=m.namespace, at_least=Role.MAINTAINER)
    ]


def dashboard_versions(*, namespaces: list[Namespace], limit: int = 50) -> list[DashboardVersion]:
    versions = (
        PackVersion.objects.filter(pack__namespace__in=namespaces, deleted_at__isnull=True)
        .select_related("pack__namespace", "ingest")
        .order_by("-published_at", "-id")[:limit]
    )
    out = []
    for v in versions:
        status, memories = _ingest(v)
        job = getattr(v, "ingest", None)
        out.append(
            DashboardVersion(
                id=v.pk,
                pack=v.pack.full_name,
                version=v.version,
                published_at=v.published_at,
                ingest_status=status,
                memories=memories,
                error=str(job.error) if job is not None else "",
                yanked=v.yanked,
            )
        )
    return out


# --------------------------------------------------------------------------- search facets


@dataclass(frozen=True)
class Facets:
    licenses: list[str]
    base_models: list[str]


def search_facets(*, actor: Actor, limit: int = 50) -> Facets:
    """Licenses and base models of visible, live versions (suggestions for the filters)."""
    versions = PackVersion.objects.filter(
        pack__in=packs_visible(actor=actor), deleted_at__isnull=True, yanked=False
    )
    # DISTINCT in the database: every value counts, however many versions share one.
    licenses = versions.order_by("license").values_list("license", flat=True).distinct()
    models = (
        versions.annotate(model=Func(F("base_models"), function="unnest", output_field=CharField()))
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )
    return Facets(licenses=list(licenses[:limit]), base_models=list(models[:limit]))
