"""Pack cards: the Markdown ``description`` of a manifest with optional YAML front matter.

A card travels in the signed manifest (``description``, SPEC.md section 3.6), so each
version has its own and the signature covers it. The front matter is parsed with
python-frontmatter (YAML ``safe_load``); a card without front matter, or with front
matter that does not parse, is plain Markdown, as before. Unknown keys are ignored.

Not here: HTML rendering and sanitising (``frontend.rendering``), the pack page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import frontmatter
import yaml

__all__ = ["PREVIEW_CHARS", "Card", "LicenceLink", "card_parse", "licence_links", "preview_records"]

DEFAULT_PREVIEW_COUNT = 3
#: How much of a preview memory the pack page shows before purchase (the rest is cut).
PREVIEW_CHARS = 600
MAX_PREVIEWS = 20
_SPDX_TOKEN = re.compile(r"[A-Za-z0-9.+-]+")
_OPERATORS = {"AND", "OR", "WITH"}


@dataclass(frozen=True)
class LicenceLink:
    """One SPDX id of a licence expression; ``url`` is empty for ``LicenseRef-`` ids."""

    text: str
    url: str


@dataclass(frozen=True)
class Card:
    body: str
    license: str = ""
    base_models: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    personal_data: str = ""
    evaluation: str = ""
    changelog: str = ""
    preview: tuple[str, ...] = ()  # memory record ids the publisher shows before purchase
    problems: tuple[str, ...] = field(default_factory=tuple)


def _strings(value: Any, limit: int = 50) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(str(v).strip()[:300] for v in value[:limit] if str(v).strip())


def _text(value: Any, limit: int = 2000) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()[:limit]


def card_parse(description: str) -> Card:
    """The card of a manifest description; never raises on bad front matter."""
    if not description.lstrip().startswith("---"):
        return Card(body=description)
    try:
        post = frontmatter.loads(description)
    except (yaml.YAMLError, ValueError) as e:
        return Card(body=description, problems=(f"front matter does not parse: {e}",))
    meta: dict[str, Any] = dict(post.metadata) if isinstance(post.metadata, dict) else {}
    evaluation = meta.get("evaluation")
    if isinstance(evaluation, dict):
        evaluation = ", ".join(f"{k}: {v}" for k, v in evaluation.items())
    return Card(
        body=post.content,
        license=_text(meta.get("license"), 200),
        base_models=_strings(meta.get("base_models")),
        languages=_strings(meta.get("languages")),
        tags=_strings(meta.get("tags")),
        personal_data=_text(meta.get("personal_data")),
        evaluation=_text(evaluation),
        changelog=_text(meta.get("changelog"), 5000),
        preview=_strings(meta.get("preview"), MAX_PREVIEWS),
    )


def preview_records(card: Card, record_ids: Sequence[str]) -> set[str]:
    """The record ids of a version's preview memories: the ones the card names, else the
    first :data:`DEFAULT_PREVIEW_COUNT` in index order (``record_ids`` in that order).

    One rule for the pack page's previews and for what search may show a stranger of a
    paid pack (``memstore.search``)."""
    if card.preview:
        return set(card.preview) & set(record_ids)
    return set(list(record_ids)[:DEFAULT_PREVIEW_COUNT])


def licence_links(expression: str) -> tuple[LicenceLink, ...]:
    """Each part of an SPDX expression, ids linked to their page on spdx.org."""
    parts: list[LicenceLink] = []
    for part in re.split(r"(\s+|[()])", expression):
        if not part or part.isspace():
            continue
        plain = part in _OPERATORS or part in ("(", ")") or not _SPDX_TOKEN.fullmatch(part)
        if plain or part.startswith(("LicenseRef-", "DocumentRef-")):
            parts.append(LicenceLink(part, ""))
        else:
            base = part.removesuffix("+")
            parts.append(LicenceLink(part, f"https://spdx.org/licenses/{base}.html"))
    return tuple(parts)
