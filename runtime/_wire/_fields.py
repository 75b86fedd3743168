"""Field readers shared by the wire parsers: typed access with the one error code.

Not here: the answers' shapes (:mod:`.registry`, :mod:`.uploads`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import RegistryError

HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def bad(message: str) -> RegistryError:
    return RegistryError(f"unexpected resolve response: {message}", code="registry.bad_response")


def get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """A resolve response's field, of ``kind``."""
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad(f"field {key!r} is missing or has the wrong type")
    return value


def invalid(what: str) -> RegistryError:
    return RegistryError(f"the registry's answer has {what}", code="registry.bad_response")


def field(data: Any, key: str, kind: type) -> Any:
    """Any other answer's field, of ``kind``."""
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        raise invalid(f"no valid {key!r}")
    return data[key]


def text(data: Mapping[str, Any], key: str) -> str:
    """An optional string field ("" when absent or not a string)."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def count(data: Mapping[str, Any], key: str) -> int:
    """An optional byte count (0 when absent)."""
    value = data.get(key) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"an invalid {key!r}")
    return value
