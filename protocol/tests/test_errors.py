import re
from pathlib import Path

import pytest

import protocol
from protocol import errors

PROTOCOL = Path(protocol.__file__).parent
# A stable code: two or more dotted lower-case parts, first one a known family.
CODE = re.compile(
    r"""["']((?:mip|manifest|archive|integrity|payload|signature|build|ref|log)(?:\.[a-z_0-9]+)+)["']"""
)
NOT_CODES = {"manifest.json", "mip.kind", "mip.fingerprint"}
# safetensors header keys of a KV cache (protocol.payloads.KV_META_*), not error codes
NOT_CODES |= {"mip.kv.encoding", "mip.kv.scales", "mip.kv.positions", "mip.kv.shared_prefix"}
NOT_CODES |= {"mip.kv.chunk.key", "mip.kv.chunk.parent"}


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in PROTOCOL.rglob("*.py"):
        if "tests" in path.parts or "conformance" in path.parts:
            continue
        found |= set(CODE.findall(path.read_text("utf-8")))
    return found - NOT_CODES


def test_every_code_raised_in_protocol_is_in_the_table():
    missing = _codes_in_source() - set(errors.ERROR_CODES)
    assert not missing, f"add these codes to ERROR_CODES: {sorted(missing)}"
    assert len(_codes_in_source()) > 50


def test_every_code_in_the_table_is_used_or_a_class_default():
    defaults = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.MIPError)
    }
    unused = set(errors.ERROR_CODES) - _codes_in_source() - defaults
    assert not unused


def test_every_class_default_code_is_in_the_table():
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.MIPError):
            assert cls.code in errors.ERROR_CODES
            assert cls.__name__.endswith("Error")


def test_conformance_vectors_name_only_codes_from_the_table():
    import json

    index = json.loads((PROTOCOL / "conformance" / "vectors" / "index.json").read_text())
    codes = {v["expect"]["code"] for v in index["vectors"] if v["expect"]["outcome"] == "error"}
    assert codes <= set(errors.ERROR_CODES)


def test_descriptions_are_one_line():
    for code, text in errors.ERROR_CODES.items():
        assert text and "\n" not in text and len(text) < 100, code


def test_error_codes_table_is_read_only():
    with pytest.raises(TypeError):
        errors.ERROR_CODES["x"] = "y"  # type: ignore[index]


def test_describe_code_falls_back_to_the_nearest_parent():
    assert errors.describe_code("archive.symlink") == errors.ERROR_CODES["archive.symlink"]
    assert errors.describe_code("archive.limit.new_thing") == errors.ERROR_CODES["archive.limit"]
    assert errors.describe_code("unknown.family") == errors.ERROR_CODES["mip.error"]


def test_error_carries_code_message_and_detail():
    exc = errors.ManifestError(
        "bad", code="manifest.schema", violations=[errors.Violation("/a", "m")], extra=1
    )
    assert str(exc) == "[manifest.schema] bad"
    assert exc.violations == [errors.Violation("/a", "m")]
    assert exc.to_dict() == {
        "code": "manifest.schema",
        "message": "bad",
        "detail": {"violations": [{"pointer": "/a", "message": "m"}], "extra": 1},
    }


def test_subclass_default_codes():
    assert errors.LimitExceededError("x").code == "archive.limit"
    assert isinstance(errors.LimitExceededError("x"), errors.ArchiveError)
    assert isinstance(errors.UnsupportedVersionError("x"), errors.ManifestError)
    assert errors.ManifestError("x").violations == []


def test_spec_lists_every_error_code_and_schema_id():
    spec = (PROTOCOL / "SPEC.md").read_text("utf-8")
    for code in errors.ERROR_CODES:
        assert f"| `{code}` |" in spec, code
    from protocol.schema import LORA_CONFIG_SCHEMA_ID, MANIFEST_SCHEMA_ID, MEMORY_RECORD_SCHEMA_ID

    for sid in (MANIFEST_SCHEMA_ID, MEMORY_RECORD_SCHEMA_ID, LORA_CONFIG_SCHEMA_ID):
        assert sid in spec
