"""Pack references and semantic-version ranges: ``NS/NAME[@VERSION|@RANGE]``.

Both the registry's resolve endpoint and the runtime's ``memos install`` parse
references with this module, so they agree on what ``acme/docs@^1.2`` means.

Versions follow SemVer 2.0 (precedence rules included). Ranges are a comma
separated list of comparators, all of which must hold:

* ``1.2.3`` or ``=1.2.3``  exactly that version
* ``>=1.2``, ``>1.2.0``, ``<2``, ``<=2.1``  comparisons (missing parts are 0)
* ``^1.2.3``  compatible: ``>=1.2.3, <2.0.0`` (``^0.2.3`` means ``<0.3.0``)
* ``~1.2.3``  patch-level: ``>=1.2.3, <1.3.0``
* ``*`` or empty: any version

Pre-releases match a range only when a comparator names a pre-release, as in
npm and pip.

Not here: fetching the list of versions (registry, client).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering

from .errors import ManifestError

__all__ = ["PackRef", "Version", "VersionRange", "parse_ref"]

_NAME_RE = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?/[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$"
)
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_PARTIAL_RE = re.compile(
    r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z.-]+))?$"
)


def _bad(message: str) -> ManifestError:
    return ManifestError(message, code="ref.invalid")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER_RE.match(text)
        if not match:
            raise _bad(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        major, minor, patch, pre, build = match.groups()
        return cls(
            int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or ""
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    def _key(self) -> tuple[object, ...]:
        # A release sorts after its pre-releases; numeric identifiers before alphanumeric.
        pre: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _partial(text: str) -> tuple[Version, int]:
    """Parse ``1``, ``1.2``, ``1.2.3`` or ``1.2.3-rc.1``; return it and how many parts it has."""
    match = _PARTIAL_RE.match(text)
    if not match:
        raise _bad(f"{text!r} is not a version in a range")
    major, minor, patch, pre = match.groups()
    given = 1 + (minor is not None) + (patch is not None)
    return (
        Version(int(major), int(minor or 0), int(patch or 0), tuple(pre.split(".")) if pre else ()),
        given,
    )


@dataclass(frozen=True)
class _Comparator:
    op: str
    version: Version

    def holds(self, v: Version) -> bool:
        return {
            ">=": v >= self.version,
            ">": v > self.version,
            "<=": v <= self.version,
            "<": v < self.version,
            "=": v == self.version,
        }[self.op]


@dataclass(frozen=True)
class VersionRange:
    text: str
    comparators: tuple[_Comparator, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        text = text.strip()
        comparators: list[_Comparator] = []
        for part in (p.strip() for p in text.split(",")) if text not in ("", "*") else ():
            comparators.extend(cls._expand(part))
        return cls(text or "*", tuple(comparators))

    @staticmethod
    def _expand(part: str) -> list[_Comparator]:
        if not part:
            raise _bad("empty comparator in version range")
        for op in (">=", "<=", ">", "<", "="):
            if part.startswith(op):
                version, _ = _partial(part[len(op) :].strip())
                return [_Comparator(op, version)]
        if part[0] in "^~":
            low, given = _partial(part[1:].strip())
            if part[0] == "~":
                high = (
                    Version(low.major, low.minor + 1, 0)
                    if given >= 2
                    else Version(low.major + 1, 0, 0)
                )
            elif low.major > 0 or given == 1:
                high = Version(low.major + 1, 0, 0)
            elif low.minor > 0 or given == 2:
                high = Version(0, low.minor + 1, 0)
            else:
                high = Version(0, 0, low.patch + 1)
            return [
                _Comparator(">=", low),
                _Comparator("<", Version(high.major, high.minor, high.patch, ("0",))),
            ]
        version, given = _partial(part)
        if given == 3:
            return [_Comparator("=", version)]
        high = (
            Version(version.major + 1, 0, 0)
            if given == 1
            else Version(version.major, version.minor + 1, 0)
        )
        return [
            _Comparator(">=", version),
            _Comparator("<", Version(high.major, high.minor, high.patch, ("0",))),
        ]

    def allows_prereleases(self) -> bool:
        return any(
            c.version.prerelease and c.version.prerelease != ("0",) for c in self.comparators
        )

    def contains(self, version: Version) -> bool:
        if version.prerelease and not self.allows_prereleases():
            return False
        return all(c.holds(version) for c in self.comparators)

    def best(self, candidates: Iterable[Version]) -> Version | None:
        """The highest candidate in the range, or None."""
        matching = [v for v in candidates if self.contains(v)]
        return max(matching) if matching else None

    @property
    def is_exact(self) -> bool:
        return len(self.comparators) == 1 and self.comparators[0].op == "="


@dataclass(frozen=True)
class PackRef:
    """``namespace/name`` plus an optional version or range."""

    name: str
    spec: VersionRange

    @property
    def namespace(self) -> str:
        return self.name.split("/", 1)[0]

    def __str__(self) -> str:
        return self.name if self.spec.text == "*" else f"{self.name}@{self.spec.text}"


def parse_ref(text: str) -> PackRef:
    """Parse ``NS/NAME``, ``NS/NAME@1.2.3`` or ``NS/NAME@^1.2``."""
    name, _, spec = text.strip().partition("@")
    if not _NAME_RE.match(name):
        raise _bad(f"{name!r} is not a pack name (namespace/name, lower case)")
    return PackRef(name, VersionRange.parse(spec))
