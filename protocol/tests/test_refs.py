import pytest

from protocol import ManifestError, PackRef, Version, VersionRange, parse_ref


def v(text):
    return Version.parse(text)


def test_semver_precedence_follows_semver_2():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    assert sorted(map(v, reversed(ordered))) == [v(t) for t in ordered]
    assert v("1.0.0+build.1") == v("1.0.0")
    assert hash(v("1.0.0+a")) == hash(v("1.0.0"))
    assert str(v("1.2.3-rc.1+b5")) == "1.2.3-rc.1+b5"
    assert v("1.0.0").__lt__("x") is NotImplemented
    assert v("1.0.0") != "1.0.0"


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0+", ""])
def test_invalid_versions_are_refused(text):
    with pytest.raises(ManifestError) as info:
        Version.parse(text)
    assert info.value.code == "ref.invalid"
    assert "is not a semantic version" in info.value.message


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ("^1.2.3", ["1.2.3", "1.9.0"], ["2.0.0", "1.2.2", "2.0.0-rc.1"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("^0.0", ["0.0.9"], ["0.1.0"]),
        ("^1", ["1.0.0", "1.9.9"], ["2.0.0"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.5.0"], ["2.0.0"]),
        (">=1.2, <2", ["1.2.0", "1.99.0"], ["2.0.0", "1.1.9"]),
        (">1.0.0", ["1.0.1"], ["1.0.0"]),
        ("<=1.1", ["1.1.0"], ["1.1.1"]),
        ("=1.2.3", ["1.2.3"], ["1.2.4"]),
        ("1.2.3", ["1.2.3"], ["1.2.4"]),
        ("1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("1", ["1.9.0"], ["2.0.0"]),
        ("*", ["0.0.1", "9.9.9"], ["1.0.0-rc.1"]),
        ("", ["1.0.0"], []),
        (">=1.0.0-rc.1", ["1.0.0-rc.2", "1.0.0"], ["1.0.0-beta"]),
    ],
)
def test_ranges(spec, inside, outside):
    r = VersionRange.parse(spec)
    for text in inside:
        assert r.contains(v(text)), text
    for text in outside:
        assert not r.contains(v(text)), text


def test_best_picks_the_highest_match_or_none():
    r = VersionRange.parse("^1.0")
    assert r.best(map(v, ["0.9.0", "1.0.0", "1.4.2", "2.0.0"])) == v("1.4.2")
    assert r.best([v("3.0.0")]) is None
    assert VersionRange.parse("1.2.3").is_exact and not r.is_exact


@pytest.mark.parametrize("spec", [">=x", "^", "1.2.3.4", ">=1,", "~a"])
def test_invalid_ranges_are_refused(spec):
    with pytest.raises(ManifestError) as info:
        VersionRange.parse(spec)
    assert info.value.code == "ref.invalid"


def test_parse_ref():
    ref = parse_ref("acme/docs@^1.2")
    assert isinstance(ref, PackRef)
    assert (ref.name, ref.namespace, str(ref)) == ("acme/docs", "acme", "acme/docs@^1.2")
    assert str(parse_ref("acme/docs")) == "acme/docs"
    assert parse_ref(" acme/docs@1.0.0 ").spec.is_exact
    for bad in ("Acme/docs", "acme", "acme/docs/x", "-a/b"):
        with pytest.raises(ManifestError):
            parse_ref(bad)
