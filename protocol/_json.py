"""Strict JSON and RFC 3339 timestamps: the text-level edge of everything MIP parses.

Every JSON document MIP reads from outside (manifests, signatures, memory
records, LoRA configs) goes through :func:`parse_json`: UTF-8 only, no
byte-order mark, no duplicate keys, no NaN or Infinity, no U+0000 or lone
surrogates in any string, and no nesting deeper than :data:`MAX_JSON_DEPTH`.
Timestamps are parsed and written here too, so that one rule decides what a
"real" MIP timestamp is.

Not here: what a manifest must contain (:mod:`protocol._manifest_rules`), the
typed objects (:mod:`protocol.manifest`), canonical bytes
(:mod:`protocol.canonical`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .errors import ManifestError

__all__ = ["MAX_JSON_DEPTH", "format_timestamp", "parse_json", "parse_timestamp"]

#: Deepest nesting of objects/arrays accepted in any JSON MIP parses.
MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(data: bytes, *, what: str = "document", code: str = "manifest.bad_json") -> Any:
    """Strictly parse JSON from outside: UTF-8, no BOM, no duplicate keys, no NaN."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{what} is not valid UTF-8: {exc}", code="manifest.bad_encoding"
        ) from exc
    if text.startswith("\ufeff"):
        raise ManifestError(f"{what} starts with a byte-order mark", code="manifest.bad_encoding")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}", code=code) from exc
    if isinstance(value, str):
        _check_string(value, what)
    _check_structure(value, what)
    return value


#: Values with no strings or containers inside: a list of only these needs no walk
#: (its type set is computed in C; a Python loop over 384 floats per record was
#: a sixth of reading a pack of embedded memories).
_SCALARS = frozenset({int, float, bool, type(None)})


def _check_structure(value: Any, what: str) -> None:
    # Iterative, so that a deep document cannot exhaust the stack of later
    # recursive code (schema validation, canonicalization, copies).
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
            for key in item:
                _check_string(key, what)
        elif isinstance(item, list):
            if set(map(type, item)) <= _SCALARS:  # numbers only (an embedding): nothing to walk
                continue
            children = item
        else:
            children = ()
        for child in children:
            if isinstance(child, str):
                _check_string(child, what)
            elif isinstance(child, (dict, list)):
                if depth + 1 > MAX_JSON_DEPTH:
                    raise ManifestError(
                        f"{what} nests deeper than {MAX_JSON_DEPTH} levels",
                        code="manifest.too_deep",
                    )
                stack.append((child, depth + 1))


def _check_string(text: str, what: str) -> None:
    # JSON can spell both with escapes, but neither survives the places MIP
    # text goes (PostgreSQL text, SQLite FTS, tokenizers): refuse them here.
    if "\x00" in text:
        raise ManifestError(
            f"{what} has a string containing U+0000 (NUL), which MIP forbids",
            code="manifest.bad_encoding",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestError(
            f"{what} has a string with a lone surrogate (not valid Unicode)",
            code="manifest.bad_encoding",
        ) from exc


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (as the schema's pattern admits) to an aware datetime."""
    head, sep, tail = text.partition(".")
    if sep:  # Python keeps microseconds: trim longer fractions, keep the offset
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        offset = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{offset}"
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp has no offset")
    return value


def format_timestamp(value: datetime) -> str:
    """Format an aware datetime as MIP writes timestamps: UTC, ``Z``, no fraction if whole."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
