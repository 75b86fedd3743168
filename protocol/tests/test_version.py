import pytest

from protocol import Manifest, ManifestError, UnsupportedVersionError, register_migration
from protocol.conformance import generate as g
from protocol.version import migrate_to_current, parse_version, unregister_migration


@pytest.fixture(autouse=True)
def _clean_migrations():
    yield
    for major in (0, 3):
        unregister_migration(major)


def test_any_1x_minor_is_read_and_its_new_fields_kept():
    data = g.manifest_dict(mip_version="1.42", x_new={"a": 1})
    manifest = Manifest.from_dict(data)
    assert manifest.mip_version == "1.42"
    assert manifest.to_dict() == data


def test_major_2_is_read_like_1x():
    manifest = Manifest.from_dict(g.manifest_dict(mip_version="2.0"))
    assert manifest.mip_version == "2.0" and manifest.major == 2


def test_major_3_is_refused_with_a_clear_error():
    with pytest.raises(UnsupportedVersionError) as info:
        Manifest.from_dict(g.manifest_dict(mip_version="3.0"))
    assert info.value.code == "manifest.unsupported_version"
    assert "1.x and 2.x" in info.value.message and info.value.detail["mip_version"] == "3.0"


@pytest.mark.parametrize("value", [None, 1.0, "1", "1.0.0", "01.0", "v1.0", ""])
def test_malformed_mip_version_is_refused(value):
    with pytest.raises(ManifestError) as info:
        parse_version(value)
    assert info.value.code == "manifest.bad_mip_version"


def test_missing_mip_version_is_reported_with_every_other_violation():
    data = g.manifest_dict()
    del data["mip_version"]
    data["version"] = "one"
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data)
    assert info.value.code == "manifest.bad_mip_version"
    assert [v.pointer for v in info.value.violations] == ["/mip_version", "/version"]


def test_a_registered_migration_turns_a_future_major_into_1x():
    def from_2(data):
        data = dict(data)
        data["mip_version"] = "1.0"
        data["title"] = data.pop("display_name")
        return data

    register_migration(3, from_2)
    legacy = g.manifest_dict(mip_version="3.0")
    legacy["display_name"] = legacy.pop("title")
    assert Manifest.from_dict(legacy).title == "A conformance vector"


def test_migration_that_raises_or_returns_garbage_gets_a_stable_code():
    register_migration(3, lambda data: 1 / 0)  # type: ignore[arg-type,return-value]
    with pytest.raises(ManifestError) as info:
        migrate_to_current({"mip_version": "3.0"})
    assert info.value.code == "manifest.migration_failed"
    register_migration(3, lambda data: [1])  # type: ignore[arg-type,return-value]
    with pytest.raises(ManifestError) as info:
        migrate_to_current({"mip_version": "3.0"})
    assert info.value.code == "manifest.migration_failed"


def test_migration_must_produce_the_current_major():
    register_migration(3, lambda data: {**data, "mip_version": "4.0"})
    with pytest.raises(UnsupportedVersionError):
        migrate_to_current({"mip_version": "3.1"})


def test_migration_errors_that_are_mip_errors_pass_through():
    def bad(data):
        raise ManifestError("nope", code="manifest.schema")

    register_migration(3, bad)
    with pytest.raises(ManifestError) as info:
        migrate_to_current({"mip_version": "3.0"})
    assert info.value.code == "manifest.schema"


def test_no_migration_for_the_current_major():
    for major in (1, 2):
        with pytest.raises(ValueError, match="current"):
            register_migration(major, lambda d: d)
