"""JSON Schema (Draft 2020-12) validation of MIP documents.

The schemas live in ``protocol/schemas/`` with stable ``$id``s and are the
normative shape of MIP 1.x documents. Validation reports *every* violation,
each with its RFC 6901 JSON pointer, sorted by pointer so that output is
stable.

Not here: the cross-field rules the schema language cannot express (unique
cube ids, payload paths, real timestamps): see :mod:`protocol._manifest_rules`.

Two validators, one verdict. ``jsonschema-rs`` (compiled, about 100 times
faster here) answers "valid" for the common case; a document it does not
accept, or one it cannot take, goes to the pure-Python ``jsonschema``
validator, which decides and words every violation. A memories payload holds
one record a line, so a 100k-memory pack is 100k checks: at ~0.1 ms each in
Python that was a tenth of an import. Both follow Draft 2020-12 with formats as
annotations; a test holds them to the same verdict on the conformance vectors
and on generated records.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from ._ecma_pattern import pattern as _ecma_pattern
from .errors import ManifestError, Violation

__all__ = [
    "LORA_CONFIG_SCHEMA_ID",
    "MANIFEST_SCHEMA_ID",
    "MEMORY_RECORD_SCHEMA_ID",
    "load_schema",
    "schema_violations",
    "validate_or_raise",
]

MANIFEST_SCHEMA_ID = "https://mip.memstore.dev/schemas/1/manifest.json"
MEMORY_RECORD_SCHEMA_ID = "https://mip.memstore.dev/schemas/1/memory-record.json"
LORA_CONFIG_SCHEMA_ID = "https://mip.memstore.dev/schemas/1/lora-config.json"

_FILES = {
    MANIFEST_SCHEMA_ID: "manifest-1.json",
    MEMORY_RECORD_SCHEMA_ID: "memory-record-1.json",
    LORA_CONFIG_SCHEMA_ID: "lora-config-1.json",
}


def load_schema(schema_id: str) -> dict[str, Any]:
    """Return a bundled schema by its ``$id``."""
    return dict(_schemas()[schema_id])


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = resources.files("protocol") / "schemas"
    return {sid: json.loads((folder / name).read_text("utf-8")) for sid, name in _FILES.items()}


#: Draft 2020-12 with ``pattern`` read as ECMA-262 reads it (``$`` is the end of the
#: text, ``\d`` is ``[0-9]``: :mod:`protocol._ecma_pattern`), as ``jsonschema-rs`` does.
_Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def _validator(schema_id: str) -> Any:
    schemas = _schemas()
    registry: Registry[Any] = Registry().with_resources(
        (sid, Resource.from_contents(body)) for sid, body in schemas.items()
    )
    return _Validator(schemas[schema_id], registry=registry)


@cache
def _fast_validator(schema_id: str) -> Any:
    schemas = _schemas()
    registry = jsonschema_rs.Registry(list(schemas.items()))
    return jsonschema_rs.validator_for(schemas[schema_id], registry=registry)


def _fast_accepts(instance: Any, schema_id: str) -> bool:
    """True when the compiled validator accepts; anything else is Python's to decide."""
    try:
        return bool(_fast_validator(schema_id).is_valid(instance))
    except Exception:  # e.g. an integer wider than 64 bits, a value it cannot convert
        return False


def _pointer(error: ValidationError) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path]
    return "/" + "/".join(parts) if parts else ""


def _leaves(error: ValidationError) -> list[ValidationError]:
    # Combinators (allOf/if-then) nest the useful messages in ``context``.
    if error.context:
        leaves: list[ValidationError] = []
        for sub in error.context:
            leaves.extend(_leaves(sub))
        return leaves
    return [error]


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # pragma: no cover - instances come from JSON
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(error: ValidationError) -> str:
    """A message for people: the schema node's title instead of a regex, short values."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    title = schema.get("title")
    value = error.validator_value
    shown = _short(error.instance)
    kind = error.validator
    if kind == "pattern" or (kind in ("oneOf", "anyOf") and title):
        return f"{shown} is not {title}" if title else f"{shown} does not have the required form"
    if kind == "type":
        types = " or ".join(value) if isinstance(value, list) else value
        return f"{shown} is not of type {types}"
    if kind == "enum":
        return f"{shown} is not one of " + ", ".join(_short(v) for v in value)
    if kind == "const":
        return f"{shown} must be {_short(value)}"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if kind == "maxLength":
        return f"must be at most {value} characters long"
    if kind == "minItems":
        return f"must hold at least {value} item(s)"
    if kind == "maxItems":
        return f"must hold at most {value} item(s)"
    if kind == "uniqueItems":
        return "must not hold the same item twice"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }
        return f"{shown} must be {words[kind]} {value}"
    if kind == "contains":
        return "must hold an item matching the memory type's rules"
    text = str(error.message)
    return text if len(text) <= 300 else text[:297] + "..."


def schema_violations(instance: Any, schema_id: str) -> list[Violation]:
    """All violations of ``instance`` against the schema, sorted by pointer.

    Messages are for people: a pattern failure reads "... is not a semantic
    version", using the ``title`` of the schema node, not the regular expression.
    """
    if _fast_accepts(instance, schema_id):
        return []
    found: set[Violation] = set()
    for error in _validator(schema_id).iter_errors(instance):
        titled = isinstance(error.schema, dict) and "title" in error.schema
        leaves = _leaves(error) if error.validator == "oneOf" and not titled else [error]
        for leaf in leaves:
            found.add(Violation(_pointer(leaf), _message(leaf)))
    return sorted(found, key=lambda v: (v.pointer, v.message))


def validate_or_raise(instance: Any, schema_id: str, *, what: str, code: str) -> None:
    """Raise ManifestError carrying every violation if ``instance`` is invalid."""
    violations = schema_violations(instance, schema_id)
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        where = first.pointer or "/"
        raise ManifestError(
            f"{what} is invalid at {where}: {first.message}{more}",
            code=code,
            violations=violations,
        )
