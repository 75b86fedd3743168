"""The one serializer every domain's API shares: the error body.

Each domain's input and output serializers live with it
(``memstore/<domain>/serializers.py``). Not here: any operation's body.
"""

from __future__ import annotations

from rest_framework import serializers

__all__ = ["ErrorInner", "ErrorOut"]


class ErrorInner(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    message = serializers.CharField()
    detail = serializers.DictField()


class ErrorOut(serializers.Serializer):  # type: ignore[type-arg]
    error = ErrorInner()
