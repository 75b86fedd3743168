"""What the pack page shows beyond the basics: the card, previews, files, diff and changelog.

Reads only, composed from the registry's models and ``memstore.packs.cards`` /
``memstore.packs.diff``; the templates get small frozen dataclasses.
Not here: the version table, signatures, entitlement (``frontend.queries``).
"""

from __future__ import annotations

from dataclasses import dataclass

from memstore.errors import RegistryError
from memstore.packs.cards import (
    DEFAULT_PREVIEW_COUNT,
    PREVIEW_CHARS,
    Card,
    LicenceLink,
    card_parse,
    licence_links,
)
from memstore.packs.diff import MemoryDiff, memory_diff
from memstore.packs.models import PackVersion
from memstore.search.models import IndexedMemory
from memstore.storage.services import get_blob_storage
from protocol import (
    KV_INPUT_IDS,
    Manifest,
    MediaType,
    MIPError,
    parse_json,
    read_safetensors_header,
)

from .rendering import render_markdown


@dataclass(frozen=True)
class CardView:
    card: Card
    html: str
    licence: tuple[LicenceLink, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreviewMemory:
    cube_id: str
    record_id: str
    text: str


@dataclass(frozen=True)
class FileRow:
    path: str
    cube_id: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    published_at: object
    text: str


@dataclass(frozen=True)
class VersionChange:
    base: str  # the version compared with
    diff: MemoryDiff


def card_view(version: PackVersion) -> CardView:
    card = card_parse(version.description or "")
    warnings = list(card.problems)
    if card.license and card.license != version.license:
        # The signed manifest's licence is the one that binds; say when the card disagrees.
        warnings.append(
            f"the card states the licence {card.license}, the manifest {version.license}; "
            "the manifest's licence applies"
        )
    return CardView(
        card=card,
        html=render_markdown(card.body) if card.body.strip() else "",
        licence=licence_links(version.license),
        warnings=tuple(warnings),
    )


def previews(version: PackVersion, card: Card) -> list[PreviewMemory]:
    """The memories the publisher marked as previews, else the first few of the index."""
    rows = IndexedMemory.objects.filter(version=version)
    if card.preview:
        chosen = list(rows.filter(record_id__in=card.preview).order_by("id"))
    else:
        chosen = list(rows.order_by("id")[:DEFAULT_PREVIEW_COUNT])
    return [
        PreviewMemory(
            m.cube_id,
            m.record_id,
            m.text[:PREVIEW_CHARS] + ("…" if len(m.text) > PREVIEW_CHARS else ""),
        )
        for m in chosen
    ]


def files(version: PackVersion) -> list[FileRow]:
    return [
        FileRow(p.path, p.cube_id, p.media_type, p.size, p.sha256) for p in version.payloads.all()
    ]


def blob_only(version: PackVersion) -> bool:
    """A MIP 2 version published by its manifest alone: no container file, only blobs."""
    return not version.file_sha256


def mip_version(version: PackVersion) -> str:
    try:
        return Manifest.from_dict(version.manifest).mip_version
    except MIPError:
        return str(version.manifest.get("mip_version", ""))


MAX_LORA_CONFIG = 64 * 1024


def cube_facts(version: PackVersion) -> dict[str, str]:
    """Per activation or parameter cube, what a buyer compares: cached tokens, LoRA rank.

    Read from the stored payloads' headers only (a safetensors header, a small JSON
    config); a payload that cannot be read says so instead of guessing.
    """
    storage = get_blob_storage()
    facts: dict[str, str] = {}
    for p in version.payloads.all():
        try:
            if p.media_type == MediaType.KV_CACHE.value:
                with storage.open(p.sha256) as stream:
                    header = read_safetensors_header(stream, p.size)
                ids = header.tensors.get(KV_INPUT_IDS)
                tokens = ids.shape[0] if ids is not None and ids.shape else 0
                facts[p.cube_id] = f"{tokens} token{'s' if tokens != 1 else ''} cached"
            elif p.media_type == MediaType.LORA_CONFIG.value and p.size <= MAX_LORA_CONFIG:
                with storage.open(p.sha256) as stream:
                    config = parse_json(stream.read(MAX_LORA_CONFIG), what="LoRA config")
                if isinstance(config, dict):
                    targets = ", ".join(str(t) for t in config.get("target_modules") or [])
                    facts[p.cube_id] = f"LoRA rank {config.get('r', '?')}" + (
                        f" on {targets}" if targets else ""
                    )
        except (MIPError, OSError, RegistryError):
            facts[p.cube_id] = "payload header unreadable"
    return facts


def _memories(version: PackVersion) -> dict[tuple[str, str], str]:
    rows = IndexedMemory.objects.filter(version=version).values_list("cube_id", "record_id", "text")
    return {(cube, rid): text for cube, rid, text in rows}


def version_change(version: PackVersion, ordered: list[PackVersion]) -> VersionChange | None:
    """The diff against the next lower version in ``ordered`` (highest first), if any."""
    ids = [v.pk for v in ordered]
    if version.pk not in ids or ids.index(version.pk) + 1 >= len(ids):
        return None
    base = ordered[ids.index(version.pk) + 1]
    return VersionChange(base=base.version, diff=memory_diff(_memories(base), _memories(version)))


def changelog(ordered: list[PackVersion]) -> list[ChangelogEntry]:
    """Each version's ``changelog`` from its card front matter, highest version first."""
    entries = []
    for v in ordered:
        text = card_parse(v.description or "").changelog
        entries.append(ChangelogEntry(v.version, v.published_at, text))
    return entries


@dataclass(frozen=True)
class PageExtras:
    card: CardView
    previews: list[PreviewMemory]
    files: list[FileRow]
    change: VersionChange | None
    changelog: list[ChangelogEntry]
    blob_only: bool
    mip_version: str
    cube_facts: dict[str, str]


def page_extras(version: PackVersion, ordered: list[PackVersion]) -> PageExtras:
    view = card_view(version)
    return PageExtras(
        card=view,
        previews=previews(version, view.card),
        files=files(version),
        change=version_change(version, ordered),
        changelog=changelog(ordered),
        blob_only=blob_only(version),
        mip_version=mip_version(version),
        cube_facts=cube_facts(version),
    )
