"""Publishing to a MemStore registry: log in (create a token), manage signing keys, upload packs.

HTTP only, over httpx with an injectable transport (tests pass
``httpx.MockTransport`` or talk to a real server); no Django. The request and
response shapes are those of ``memstore/API.md``: ``POST /api/v1/auth/tokens``,
``GET /api/v1/auth/whoami``, the namespace's signing keys
(``/api/v1/namespaces/<ns>/keys``: list, register, ``.../<keyid>/revoke``),
``POST /api/v1/packs/upload`` for small packs and the resumable upload session
(``/api/v1/uploads/``) for large ones, which resumes from the server's offset
after a lost chunk.

Not here: building or signing packs (:mod:`protocol`), token storage
(:mod:`runtime.config`), printing (:mod:`runtime.cli.registry_cmds`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from protocol import PublicKey

from ._wire import parse_error
from .cache import sha256_file
from .errors import RegistryError

__all__ = [
    "ONE_REQUEST_LIMIT",
    "NamespaceSigningKey",
    "PublishResult",
    "Publisher",
    "TokenInfo",
    "WhoAmI",
]

USER_AGENT = "memos/0.1"
ONE_REQUEST_LIMIT = 32 * 1024 * 1024  # larger packs go through an upload session

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TokenInfo:
    token: str
    id: int
    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class WhoAmI:
    username: str
    namespaces: tuple[tuple[str, str], ...]  # (namespace, role)
    scopes: tuple[str, ...] | None


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: str
    sha256: str
    size: int
    signed_by: tuple[str, ...]
    ingest_status: str
    url: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class NamespaceSigningKey:
    """A signing key registered for a namespace (revoked keys stay listed)."""

    keyid: str
    public_key: str  # ``ed25519:<base64>``
    label: str
    created_at: str
    revoked_at: str | None
    revocation_reason: str

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _field(data: Any, key: str, kind: type) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        raise RegistryError(
            f"the registry's answer has no valid {key!r}", code="registry.bad_response"
        )
    return data[key]


class Publisher:
    """A client for the publishing side of one registry. Close it, or use ``with``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 120.0,
    ) -> None:
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot reach the registry at {self._http.base_url}: {exc}",
                code="network.unreachable",
            ) from exc
        if response.status_code >= 400:
            raise parse_error(response.status_code, response.content)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RegistryError(
                "the registry answered with something that is not JSON",
                code="registry.bad_response",
            ) from exc

    # ---------------------------------------------------------------- tokens

    def create_token(
        self,
        *,
        username: str,
        password: str,
        name: str = "memos",
        scopes: tuple[str, ...] = ("read", "publish:*"),
    ) -> TokenInfo:
        data = self._request(
            "POST",
            "api/v1/auth/tokens",
            json={"username": username, "password": password, "name": name, "scopes": list(scopes)},
        )
        return TokenInfo(
            token=_field(data, "token", str),
            id=_field(data, "id", int),
            name=str(data.get("name", "")),
            scopes=tuple(str(s) for s in _field(data, "scopes", list)),
        )

    def whoami(self) -> WhoAmI:
        data = self._request("GET", "api/v1/auth/whoami")
        namespaces = tuple(
            (str(n.get("name")), str(n.get("role")))
            for n in _field(data, "namespaces", list)
            if isinstance(n, dict)
        )
        scopes = data.get("scopes")
        return WhoAmI(
            username=_field(data, "username", str),
            namespaces=namespaces,
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else None,
        )

    # ---------------------------------------------------------------- signing keys

    @staticmethod
    def _keys_url(namespace: str) -> str:
        return f"api/v1/namespaces/{quote(namespace, safe='')}/keys"

    def list_keys(self, namespace: str) -> tuple[NamespaceSigningKey, ...]:
        """Every key of the namespace, revoked ones included (with their revocation date)."""
        data = self._request("GET", self._keys_url(namespace))
        if not isinstance(data, list):
            raise RegistryError(
                "the registry's answer is not a list of keys", code="registry.bad_response"
            )
        return tuple(_key(item) for item in data)

    def register_key(
        self, namespace: str, public_key: PublicKey, *, label: str = ""
    ) -> NamespaceSigningKey:
        """Register ``public_key`` for ``namespace`` (registering it again returns the same key)."""
        data = self._request(
            "POST",
            self._keys_url(namespace),
            json={"public_key": public_key.to_text(), "label": label},
        )
        key = _key(data)
        if key.keyid != public_key.keyid:
            raise RegistryError(
                f"the registry answered with key {key.keyid}, not {public_key.keyid}",
                code="registry.bad_response",
            )
        return key

    def revoke_key(self, namespace: str, keyid: str, *, reason: str = "") -> NamespaceSigningKey:
        """Revoke a key: packs signed only by it are refused from now on. It stays listed."""
        data = self._request(
            "POST",
            f"{self._keys_url(namespace)}/{quote(keyid, safe='')}/revoke",
            json={"reason": reason},
        )
        return _key(data)

    # ---------------------------------------------------------------- publishing

    def publish(
        self,
        path: Path,
        *,
        private: bool = False,
        price_amount_minor: int = 0,
        price_currency: str = "",
        chunk_size: int = 8 * 1024 * 1024,
        one_request_limit: int = ONE_REQUEST_LIMIT,
        progress: Progress | None = None,
    ) -> PublishResult:
        """Upload ``path``: in one request when small, else through a resumable session."""
        path = Path(path)
        size = path.stat().st_size
        options = {
            "private": private,
            "price_amount_minor": price_amount_minor,
            "price_currency": price_currency,
        }
        if size <= one_request_limit:
            with open(path, "rb") as fh:
                data = self._request(
                    "POST",
                    "api/v1/packs/upload",
                    files={"file": (path.name, fh, "application/octet-stream")},
                    data={
                        k: str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in options.items()
                    },
                )
            if progress is not None:
                progress(size, size)
            return self._result(data)
        return self._publish_session(path, size, options, chunk_size, progress)

    def _publish_session(
        self,
        path: Path,
        size: int,
        options: dict[str, Any],
        chunk_size: int,
        progress: Progress | None,
    ) -> PublishResult:
        session = self._request(
            "POST", "api/v1/uploads/", json={"size": size, "sha256": sha256_file(path)[0]}
        )
        session_id = _field(session, "id", str)
        chunk_size = min(chunk_size, int(session.get("max_chunk_bytes") or chunk_size))
        url = f"api/v1/uploads/{session_id}"
        offset = int(session.get("offset") or 0)
        retries = 0
        with open(path, "rb") as fh:
            while offset < size:
                fh.seek(offset)
                chunk = fh.read(chunk_size)
                try:
                    state = self._request(
                        "PATCH",
                        url,
                        content=chunk,
                        headers={
                            "Upload-Offset": str(offset),
                            "Content-Type": "application/octet-stream",
                        },
                    )
                    offset = int(_field(state, "offset", int))
                    retries = 0
                except RegistryError as exc:
                    retries += 1
                    if retries > 5 or exc.code not in (
                        "registry.upload_offset_mismatch",
                        "network.unreachable",
                    ):
                        raise
                    offset = int(_field(self._request("GET", url), "offset", int))
                if progress is not None:
                    progress(offset, size)
        data = self._request("POST", f"{url}/complete", json=options)
        return self._result(data)

    @staticmethod
    def _result(data: Any) -> PublishResult:
        ingest = data.get("ingest") if isinstance(data, dict) else None
        return PublishResult(
            name=_field(data, "name", str),
            version=_field(data, "version", str),
            sha256=_field(data, "sha256", str),
            size=_field(data, "size", int),
            signed_by=tuple(str(k) for k in _field(data, "signed_by", list)),
            ingest_status=str(ingest.get("status", "")) if isinstance(ingest, dict) else "",
            url=str(data.get("url", "")),
        )


def _key(data: Any) -> NamespaceSigningKey:
    keyid = _field(data, "keyid", str)
    if not _HEX64.match(keyid):
        raise RegistryError(
            f"the registry's answer has an invalid keyid {keyid!r}", code="registry.bad_response"
        )
    revoked_at = data.get("revoked_at")
    if revoked_at is not None and not isinstance(revoked_at, str):
        raise RegistryError(
            "the registry's answer has an invalid 'revoked_at'", code="registry.bad_response"
        )

    def text(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    return NamespaceSigningKey(
        keyid=keyid,
        public_key=_field(data, "public_key", str),
        label=text("label"),
        created_at=text("created_at"),
        revoked_at=revoked_at,
        revocation_reason=text("revocation_reason"),
    )
