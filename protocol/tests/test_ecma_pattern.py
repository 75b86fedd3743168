"""Schema patterns mean what ECMA-262 says, in both validators (protocol/_ecma_pattern.py)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import schema as S
from protocol._ecma_pattern import ecma_to_python

from .conftest import PROPERTY


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


PATTERNS = sorted({p for body in S._schemas().values() for p in _patterns(body)})


def test_every_bundled_schema_pattern_is_seen() -> None:
    assert len(PATTERNS) >= 10


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("^[a-z]+$", r"^[a-z]+\Z"),
        (r"^(?:/|$)x$", r"^(?:/|\Z)x\Z"),
        (r"^[\d$]\d+\$$", r"^[0-9$][0-9]+\$\Z"),
        (r"^\\d$", r"^\\d\Z"),  # an escaped backslash, then a literal d
    ],
)
def test_translation(source: str, expected: str) -> None:
    assert ecma_to_python(source) == expected


@pytest.mark.parametrize(
    ("schema_id", "record"),
    [
        (S.MEMORY_RECORD_SCHEMA_ID, {"id": "m1\n", "text": "a"}),
        (S.MEMORY_RECORD_SCHEMA_ID, {"id": "m1\r\n", "text": "a"}),
    ],
)
def test_a_trailing_newline_is_refused(schema_id: str, record: dict[str, Any]) -> None:
    assert S.schema_violations(record, schema_id), record
    assert S.schema_violations({**record, "id": "m1"}, schema_id) == []


TRICKY = st.one_of(
    st.sampled_from(
        [
            "1.2.3\n",
            "1.2.3",
            "1\u0662.0.0",
            "\u0661.0.0",
            "a" * 64 + "\n",
            "a" * 64,
            "demo/tips\n",
            "demo/tips",
            "payloads/x\n",
            "2025-01-01T00:00:00Z\n",
            "MIT\n",
        ]
    ),
    st.text(alphabet=st.sampled_from("az09.-_/:+@ \n\u0662T"), max_size=20),
)


@PROPERTY
@given(value=TRICKY, source=st.sampled_from(PATTERNS))
def test_python_and_the_compiled_validator_agree_on_every_pattern(value: str, source: str) -> None:
    compiled = jsonschema_rs.validator_for({"type": "string", "pattern": source})
    assert bool(re.search(ecma_to_python(source), value)) == compiled.is_valid(value), (
        source,
        value,
    )
