"""JSON Schema's ``pattern`` with ECMA-262 meaning, for Python's ``re``.

JSON Schema patterns are ECMA-262 regular expressions. The ``jsonschema``
package runs them with Python's ``re``, where two things differ in ways that
matter to a strict reader:

- ``$`` also matches *before a final newline*: ``^[a-z]+$`` accepts ``"abc\\n"``.
  A memory id, a pack name or a digest with a trailing newline passed our
  schema check while every ECMA-262 reader (and ``jsonschema-rs``) refuses it:
  two readers, two verdicts on the same pack.
- ``\\d`` matches every Unicode decimal digit; ECMA-262's is ``[0-9]``.

:func:`ecma_to_python` rewrites a pattern so ``re`` gives the ECMA-262
verdict on these points: ``$`` outside a character class becomes ``\\Z``
(the end of the text only), ``\\d`` becomes ``[0-9]`` (``0-9`` inside a
class). :func:`pattern` is the ``pattern`` keyword for a ``jsonschema``
validator built with it. The bundled schemas use nothing else that differs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema.exceptions import ValidationError

__all__ = ["ecma_to_python", "pattern"]


def ecma_to_python(source: str) -> str:
    """``source`` (an ECMA-262 pattern) as a Python pattern with the same verdicts (see above)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source):
            escaped = source[i + 1]
            if escaped == "d":
                out.append("0-9" if in_class else "[0-9]")
            else:
                out.append(source[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)


@cache
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(ecma_to_python(source))


def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``pattern`` keyword (Draft 2020-12) with ECMA-262 ``$`` and ``\\d``."""
    if validator.is_type(instance, "string") and not _compiled(patrn).search(instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")
