"""Registry credentials: the token challenge of the distribution spec, as an ``httpx.Auth``.

A hosted registry (GHCR, Docker Hub, Harbor, ECR's OCI endpoint, Artifactory) answers a request
without a token with ``401`` and ``WWW-Authenticate: Bearer realm="...",service="...",
scope="..."``; the client gets a token from the realm (anonymously for public repositories, or
with a username and password / personal access token) and sends the request again with
``Authorization: Bearer <token>``. :class:`TokenAuth` does that, keeps the token for later
requests (so a streamed upload body is sent once a token is held: the body-less ``HEAD``/``POST``
of a push get the challenge first), and gets a new one when the scope widens (pull, then push).
``Basic`` challenges are answered with the credentials directly. Loopback test registries send
no challenge, and then nothing happens here.

Not here: where credentials come from (the caller passes them), the registry calls (:mod:`.client`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Generator

import httpx

from .errors import OCIError

__all__ = ["TokenAuth", "parse_challenge"]

_PARAM = re.compile(r'(\w+)="([^"]*)"')
_MAX_TOKEN_ANSWER = 64 * 1024


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``('bearer', {'realm': ..., 'service': ..., 'scope': ...})`` of a WWW-Authenticate value."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


class TokenAuth(httpx.Auth):
    """Answers Bearer and Basic challenges (see the module docstring); thread-safe enough for
    the installer's parallel fetches (a token is replaced whole)."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self._basic: str | None = None
        if username is not None:
            pair = f"{username}:{password or ''}".encode()
            self._basic = "Basic " + base64.b64encode(pair).decode("ascii")
        self._header: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._header is not None:
            request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code != 401:
            return
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic" and self._basic is not None:
            self._header = self._basic
        elif scheme == "bearer" and "realm" in params:
            token_request = self._token_request(params, request.url)
            answer = yield token_request
            answer.read()
            self._header = f"Bearer {self._token(answer)}"
        else:
            return
        request.headers["Authorization"] = self._header
        yield request

    def _token_request(self, params: dict[str, str], origin: httpx.URL) -> httpx.Request:
        query: dict[str, str] = {k: params[k] for k in ("service", "scope") if k in params}
        try:
            realm = httpx.URL(params["realm"])
        except httpx.InvalidURL as exc:
            raise OCIError("the registry named a malformed token realm",
                           code="oci.unauthorized") from exc  # fmt: skip
        if realm.scheme not in ("http", "https"):
            raise OCIError("the registry named a token realm that is not http(s)",
                           code="oci.unauthorized")  # fmt: skip
        request = httpx.Request("GET", realm, params=query)
        # Credentials go to a realm over TLS, or to the registry's own host; never elsewhere.
        if self._basic is not None and (realm.scheme == "https" or realm.host == origin.host):
            request.headers["Authorization"] = self._basic
        return request

    @staticmethod
    def _token(answer: httpx.Response) -> str:
        if answer.status_code in (401, 403):
            raise OCIError("the registry's token service refused the credentials",
                           code="oci.unauthorized", status=answer.status_code)  # fmt: skip
        if answer.status_code != 200 or len(answer.content) > _MAX_TOKEN_ANSWER:
            raise OCIError(f"the registry's token service answered HTTP {answer.status_code}",
                           code="oci.unauthorized", status=answer.status_code)  # fmt: skip
        try:
            doc = answer.json()
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError) as exc:
            raise OCIError("the registry's token service answered no JSON",
                           code="oci.unauthorized") from exc  # fmt: skip
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise OCIError("the registry's token service gave no token", code="oci.unauthorized")
        return token
