import pytest

from protocol import ManifestError
from protocol.schema import (
    LORA_CONFIG_SCHEMA_ID,
    MANIFEST_SCHEMA_ID,
    MEMORY_RECORD_SCHEMA_ID,
    load_schema,
    schema_violations,
    validate_or_raise,
)


def test_schemas_have_stable_ids_and_are_draft_2020_12():
    for sid in (MANIFEST_SCHEMA_ID, MEMORY_RECORD_SCHEMA_ID, LORA_CONFIG_SCHEMA_ID):
        schema = load_schema(sid)
        assert schema["$id"] == sid
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_violations_are_sorted_with_pointers_and_human_messages():
    record = {"id": "bad id", "text": "", "tags": ["a", "a"], "embedding": {"model": "m"}, "x~/": 1}
    found = schema_violations(record, MEMORY_RECORD_SCHEMA_ID)
    assert [v.pointer for v in found] == sorted(v.pointer for v in found)
    messages = {v.pointer: v.message for v in found}
    assert messages["/id"].startswith('"bad id" is not a memory id')
    assert messages["/text"] == "must not be empty"
    assert messages["/tags"] == "must not hold the same item twice"
    assert ("/embedding", "'dimension' is a required property") in {
        (v.pointer, v.message) for v in found
    }


@pytest.mark.parametrize(
    ("instance", "needle"),
    [
        ({"peft_type": "X", "r": 0, "lora_alpha": 0, "target_modules": []}, 'must be "LORA"'),
        (
            {"peft_type": "LORA", "r": 0, "lora_alpha": 1, "target_modules": "q"},
            "0 must be at least 1",
        ),
        (
            {"peft_type": "LORA", "r": 1, "lora_alpha": 0, "target_modules": "q"},
            "must be more than 0",
        ),
        (
            {"peft_type": "LORA", "r": 1, "lora_alpha": 1, "target_modules": []},
            "is not a module name or a non-empty list",
        ),
        (
            {
                "peft_type": "LORA",
                "r": 1,
                "lora_alpha": 1,
                "target_modules": "q",
                "lora_dropout": 2,
            },
            "2 must be at most 1",
        ),
        (
            {"peft_type": "LORA", "r": "1", "lora_alpha": 1, "target_modules": "q"},
            "is not of type integer",
        ),
    ],
)
def test_messages_name_the_rule_not_the_regex(instance, needle):
    messages = [v.message for v in schema_violations(instance, LORA_CONFIG_SCHEMA_ID)]
    assert any(needle in m for m in messages), messages


def test_long_values_are_shortened_in_messages():
    found = schema_violations({"id": "x" * 500, "text": "t"}, MEMORY_RECORD_SCHEMA_ID)
    assert len(found[0].message) < 200


def test_validate_or_raise_carries_every_violation():
    with pytest.raises(ManifestError) as info:
        validate_or_raise(
            {"text": 5}, MEMORY_RECORD_SCHEMA_ID, what="record", code="payload.bad_memory_record"
        )
    assert info.value.code == "payload.bad_memory_record"
    assert len(info.value.violations) == 2
    assert "(and 1 more)" in info.value.message
    validate_or_raise({"id": "a", "text": "b"}, MEMORY_RECORD_SCHEMA_ID, what="record", code="x")


def test_manifest_enum_and_item_count_messages():
    found = schema_violations({"mip_version": "1.0", "cubes": []}, MANIFEST_SCHEMA_ID)
    assert any(v.pointer == "/cubes" and v.message == "must hold at least 1 item(s)" for v in found)
    cube = {
        "id": "c",
        "memory_type": "x",
        "payloads": [],
        "created_at": "t",
        "lifecycle": "y",
        "version": 1,
    }
    found = schema_violations({"cubes": [cube]}, MANIFEST_SCHEMA_ID)
    assert any(v.pointer == "/cubes/0/memory_type" and "is not one of" in v.message for v in found)
