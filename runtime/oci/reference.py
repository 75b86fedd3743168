"""``oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]``: parsing and printing OCI references.

The grammar is the distribution reference grammar (lower-case path
components separated by ``/``, tags of at most 128 word characters, dots
and dashes, digests ``sha256:<64 hex>``). A reference with both a tag and a
digest is fetched by digest; the tag is then only checked against the pack's
version. Loopback hosts (``localhost``, ``127.0.0.0/8``, ``[::1]``) are spoken
to over plain HTTP, as oras and docker do; every other host over HTTPS unless
the caller asks for plain HTTP.

Not here: talking to the registry (:mod:`.client`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import OCIError

__all__ = ["SCHEME", "OCIReference", "is_oci_reference", "parse_reference"]

SCHEME = "oci://"
_HOST = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_MAX_REPOSITORY = 255


def _split_host(host: str) -> tuple[str, str | None]:
    """(name, port) of ``HOST[:PORT]``; an IPv6 name loses its brackets."""
    if host.startswith("["):
        end = host.index("]")
        name, rest = host[1:end], host[end + 1 :]
    else:
        name, colon, port = host.partition(":")
        rest = colon + port
    return name, (rest[1:] if rest else None)


def _bad(text: str, why: str) -> OCIError:
    return OCIError(f"{text!r} is not an OCI reference: {why}", code="oci.bad_reference")


@dataclass(frozen=True)
class OCIReference:
    """A parsed reference: where the registry is, which repository, which manifest."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        text = f"{SCHEME}{self.host}/{self.repository}"
        if not _HOST.match(self.host):
            raise _bad(text, f"bad host {self.host!r}")
        port = _split_host(self.host)[1]
        if port is not None and not 0 < int(port) < 65536:
            raise _bad(text, f"bad port {port!r}")
        if len(self.repository) > _MAX_REPOSITORY or not _REPOSITORY.match(self.repository):
            raise _bad(text, "the repository is lower-case components separated by '/'")
        if self.tag is not None and not _TAG.match(self.tag):
            raise _bad(text, f"bad tag {self.tag!r} (letters, digits, '_.-'; at most 128)")
        if self.digest is not None and not _DIGEST.match(self.digest):
            raise _bad(text, f"bad digest {self.digest!r} (sha256:<64 hex digits>)")

    @property
    def manifest_ref(self) -> str:
        """What goes after ``/manifests/``: the digest if there is one, else the tag."""
        ref = self.digest or self.tag
        if ref is None:
            raise _bad(str(self), "name a tag (REPO:TAG) or a digest (REPO@sha256:HEX)")
        return ref

    @property
    def is_loopback(self) -> bool:
        name = _split_host(self.host)[0]
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def base_url(self, *, plain_http: bool | None = None) -> str:
        """``http://HOST`` for loopback hosts (or ``plain_http=True``), else ``https://HOST``."""
        plain = self.is_loopback if plain_http is None else plain_http
        return f"{'http' if plain else 'https'}://{self.host}"

    def with_tag(self, tag: str) -> OCIReference:
        return OCIReference(self.host, self.repository, tag, self.digest)

    def __str__(self) -> str:
        text = f"{SCHEME}{self.host}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def is_oci_reference(text: str) -> bool:
    """Whether a command argument names an OCI registry (``oci://...``)."""
    return text.startswith(SCHEME)


def parse_reference(text: str) -> OCIReference:
    """Parse ``oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]``; raise ``oci.bad_reference``."""
    if not is_oci_reference(text):
        raise _bad(text, f"it must start with {SCHEME}")
    rest = text[len(SCHEME) :]
    host, slash, path = rest.partition("/")
    if not slash or not path:
        raise _bad(text, "it has no repository (oci://HOST/REPO:TAG)")
    path, at, digest = path.partition("@")
    name, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if colon and not name:
        raise _bad(text, "empty repository")
    return OCIReference(host, name, tag if colon else None, digest if at else None)
