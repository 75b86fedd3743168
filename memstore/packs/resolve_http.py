"""The resolve view's own HTTP work, made cheap without changing what it accepts or answers.

Why: once resolve read its rows in one round trip (:mod:`.resolve_read`), DRF's per-request
work was a large share of what was left (issue 17): validating the one query parameter with a
serializer, and negotiating the renderer from the ``Accept`` header. Both are kept, exactly:

* :func:`resolve_spec` takes the ordinary ``spec`` (absent, or short printable ASCII) as
  ``ResolveQueryIn`` would (the last value, whitespace trimmed, empty meaning ``*``) and hands
  anything else to that serializer, which gives the same value or the same error as before.
* :class:`RememberedNegotiation` is DRF's default negotiation, remembered per ``Accept``
  header and format: the same question gets the same renderer; a refusal (406, or 404 for an
  unknown format) is not remembered and raises each time.

Authentication, permissions and throttles still run in DRF's order, on every request.
Not here: who may resolve (:mod:`.selectors`), the answer (:mod:`.resolve_body`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from ..api.common import valid_input
from . import serializers as s

__all__ = ["RememberedNegotiation", "resolve_spec"]

#: ResolveQueryIn's ``spec`` limit (``max_length``), checked there too.
_SPEC_MAX = 200


def resolve_spec(query: Any) -> str:
    """The version range asked for (``*`` when none): ``ResolveQueryIn``'s answer, cheaply."""
    raw = query.get("spec")  # a QueryDict's last value, as the serializer reads it
    if raw is None:
        return "*"
    if len(raw) <= _SPEC_MAX and raw.isascii() and "\x00" not in raw:
        return str(raw).strip() or "*"
    spec: str = valid_input(s.ResolveQueryIn, query)["spec"]  # its value, or its error
    return spec or "*"


#: Negotiations remembered per process; Accept headers are the client's, hence the bound.
_NEGOTIATED_SIZE = 256
_ACCEPT_MAX = 512
_negotiated: dict[tuple[Any, ...], tuple[int, str]] = {}


class RememberedNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = renderers if isinstance(renderers, list) else list(renderers)
        override = self.settings.URL_FORMAT_OVERRIDE
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        key = (
            format_suffix,
            request.query_params.get(override) if override else None,
            accept,
            tuple(type(r) for r in renderers),
        )
        hit = _negotiated.get(key)
        if hit is not None:
            return renderers[hit[0]], hit[1]
        renderer, media_type = super().select_renderer(request, renderers, format_suffix)
        if len(accept) <= _ACCEPT_MAX:
            if len(_negotiated) >= _NEGOTIATED_SIZE:
                _negotiated.clear()
            index = next(i for i, r in enumerate(renderers) if r is renderer)
            _negotiated[key] = (index, media_type)
        return renderer, media_type
