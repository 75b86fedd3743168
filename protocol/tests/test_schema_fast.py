"""The compiled validator may only say "valid" where the Python one would.

``schema_violations`` trusts ``jsonschema-rs`` when it accepts a document and
asks ``jsonschema`` otherwise; so the property that matters is one-sided (the
fast path never accepts what the reference refuses), and the common shapes
must be accepted by the fast path, or it saves nothing.
"""

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from protocol import schema as S
from protocol.conformance import fixtures as f

from .conftest import PROPERTY


def _reference_valid(instance: Any, schema_id: str) -> bool:
    validator: Draft202012Validator = S._validator(schema_id)
    return not any(True for _ in validator.iter_errors(instance))


JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "a", "a\n", "ab.c", "2025-01-01T00:00:00Z", "2025-13-01T00:00:00Z"]),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)

RECORD_KEYS = ["id", "text", "tags", "created_at", "updated_at", "metadata", "embedding"]
EMBEDDING = st.fixed_dictionaries(
    {},
    optional={
        "model": JSON | st.just("all-MiniLM-L6-v2"),
        "dimension": JSON | st.integers(0, 70000),
        "vector": JSON | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4),
    },
)
RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON | st.sampled_from(["m-1", "a:b.c", "-x", "x" * 129, "a\n"]),
        "text": JSON | st.text(min_size=0, max_size=5),
        "tags": JSON | st.lists(st.sampled_from(["a", "b", "", "c"]), max_size=4),
        "created_at": JSON,
        "updated_at": JSON,
        "metadata": JSON,
        "embedding": EMBEDDING | JSON,
        "extra": JSON,
    },
)


@PROPERTY
@given(RECORDS)
def test_fast_path_never_accepts_a_record_the_reference_refuses(record: dict[str, Any]) -> None:
    if S._fast_accepts(record, S.MEMORY_RECORD_SCHEMA_ID):
        assert _reference_valid(record, S.MEMORY_RECORD_SCHEMA_ID)


@PROPERTY
@given(st.sampled_from([*sorted(f.manifest_dict()), "cubes/0", "cubes/0/payloads"]), JSON)
def test_fast_path_never_accepts_a_manifest_the_reference_refuses(where: str, value: Any) -> None:
    manifest = copy.deepcopy(f.manifest_dict(f.plaintext_cube(), f.activation_cube(f.kv_cache())))
    node: Any = manifest
    *parents, last = where.split("/")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    if S._fast_accepts(manifest, S.MANIFEST_SCHEMA_ID):
        assert _reference_valid(manifest, S.MANIFEST_SCHEMA_ID)


def test_fast_path_accepts_the_common_shapes() -> None:
    record = {
        "id": "m-1",
        "text": "The user prefers window seats.",
        "tags": ["travel"],
        "created_at": "2025-01-01T00:00:00Z",
        "metadata": {"source": {"system": "mem0", "id": "1"}},
        "embedding": {"model": "all-MiniLM-L6-v2", "dimension": 3, "vector": [0.1, -0.2, 0.3]},
    }
    assert S._fast_accepts(record, S.MEMORY_RECORD_SCHEMA_ID)
    cubes = (f.plaintext_cube(), f.activation_cube(f.kv_cache()), f.parameter_cube())
    manifest = f.manifest_dict(*cubes)
    assert _reference_valid(manifest, S.MANIFEST_SCHEMA_ID)
    assert S._fast_accepts(manifest, S.MANIFEST_SCHEMA_ID)


def test_refusals_are_still_worded_by_the_reference_validator() -> None:
    found = S.schema_violations({"id": "bad id", "text": ""}, S.MEMORY_RECORD_SCHEMA_ID)
    assert {v.pointer for v in found} == {"/id", "/text"}
    assert next(v for v in found if v.pointer == "/text").message == "must not be empty"
