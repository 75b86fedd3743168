"""Issue 13 item 7: a property test over the OpenAPI schema finds no 5xx.

schemathesis is not installed in this environment, so this walks drf-spectacular's
schema itself: for every operation it fills path, query and JSON body parameters from
their declared types with hypothesis (integers up to 2**80 either way, odd text, wrong
types) and sends them as a token with read and publish scopes. Any answer of 500 or
more fails. Bounded (:data:`PER_OPERATION` examples per operation, :data:`PER_PARAMETER`
more per declared parameter) so it runs in well under a minute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from memstore.api.tests.clients import bearer_client

pytestmark = pytest.mark.django_db

HUGE = 2**80
#: Text with the characters parsers trip on, short enough to keep requests small.
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
ANY_SCALAR = st.one_of(
    st.integers(-HUGE, HUGE),
    TEXT,
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
SKIP_METHODS = {"patch", "put", "head", "options", "trace"}  # binary chunk uploads


#: The integers that overflow something: 32/64-bit edges, 10**20, and their negatives.
EDGES = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**20, HUGE, -(2**63) - 1, -1, 0])


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if kind == "integer":
        return st.one_of(EDGES, st.integers(-HUGE, HUGE), st.integers(-5, 5), TEXT)
    if kind == "boolean":
        return st.one_of(st.booleans(), TEXT)
    if kind == "array":
        return st.one_of(st.lists(_value(schema.get("items", {})), max_size=3), ANY_SCALAR)
    if kind == "object":
        return st.dictionaries(TEXT, ANY_SCALAR, max_size=3)
    return st.one_of(TEXT, ANY_SCALAR)


def _body(spec: dict[str, Any], operation: dict[str, Any]) -> st.SearchStrategy[Any]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    props = schema.get("properties", {})
    if not props:
        return st.just(None)
    return st.fixed_dictionaries({}, optional={k: _value(v) for k, v in props.items()})


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method not in SKIP_METHODS and isinstance(op, dict)
    ]


@st.composite
def requests(
    draw: st.DrawFn, spec: dict[str, Any], operation: tuple[str, str, dict[str, Any]]
) -> tuple[str, str, dict[str, Any], Any]:
    path, method, op = operation
    query: dict[str, Any] = {}
    for param in op.get("parameters", []):
        value = draw(_value(param.get("schema", {})))
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", quote(str(value), safe="") or "x")
        elif param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = str(value)
    return method, path, query, draw(_body(spec, op))


@pytest.fixture
def spec(db: None) -> dict[str, Any]:
    answer = APIClient().get("/api/v1/schema/?format=json")
    assert answer.status_code == 200
    schema: dict[str, Any] = answer.json()
    return schema


def test_no_request_built_from_the_schema_gets_a_5xx(spec: dict[str, Any], alice: Any) -> None:
    """Every operation in turn, a bounded number of examples each."""
    client = bearer_client(alice[0], ["read", "publish:acme"])
    operations = _operations(spec)
    assert len(operations) > 20  # the schema really lists the API
    for operation in operations:
        _check_operation(client, spec, operation)


#: Examples per operation: a few, and more for each parameter it declares.
PER_OPERATION = 4
PER_PARAMETER = 8


def _check_operation(
    client: APIClient, spec: dict[str, Any], operation: tuple[str, str, dict[str, Any]]
) -> None:
    @settings(
        max_examples=PER_OPERATION + PER_PARAMETER * len(operation[2].get("parameters", [])),
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run (CI)
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(request=requests(spec, operation))
    def check(request: tuple[str, str, dict[str, Any], Any]) -> None:
        method, path, query, body = request
        call = getattr(client, method)
        if method == "get":
            response = call(path, query)
        else:
            url = path + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()))
            response = call(url, body, format="json")
        assert response.status_code < 500, (method, path, query, body, response.content[:300])

    check()
