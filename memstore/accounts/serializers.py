"""Input and output serializers of the accounts API (:mod:`memstore.accounts.apis`).

One ``...In`` per operation that takes a body or query, one ``...Out`` per answer.
Not here: validation that needs the database (the services do it).
"""

from __future__ import annotations

from rest_framework import serializers

__all__ = [
    "KeyCreateIn",
    "KeyOut",
    "KeyRevokeIn",
    "MemberIn",
    "NamespaceCreateIn",
    "NamespaceOut",
    "NamespaceRoleOut",
    "TokenCreateIn",
    "TokenOut",
    "WhoAmIOut",
]


class TokenCreateIn(serializers.Serializer):  # type: ignore[type-arg]
    username = serializers.CharField(required=False)
    password = serializers.CharField(required=False, style={"input_type": "password"})
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=50
    )
    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=365,
        help_text="Lifetime in days (default 90, at most 365).",
    )


class TokenOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    token = serializers.CharField()
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class NamespaceRoleOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    role = serializers.CharField()


class WhoAmIOut(serializers.Serializer):  # type: ignore[type-arg]
    username = serializers.CharField()
    namespaces = NamespaceRoleOut(many=True)
    scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)


class NamespaceCreateIn(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=40)
    display_name = serializers.CharField(required=False, default="", allow_blank=True)


class KeyOut(serializers.Serializer):  # type: ignore[type-arg]
    keyid = serializers.CharField()
    public_key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revocation_reason = serializers.CharField()


class NamespaceOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    kind = serializers.CharField()
    display_name = serializers.CharField()
    created_at = serializers.DateTimeField()
    keys = KeyOut(many=True)


class MemberIn(serializers.Serializer):  # type: ignore[type-arg]
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=["owner", "maintainer", "member", "none"])


class NamespaceTransferIn(serializers.Serializer):  # type: ignore[type-arg]
    to_owner = serializers.CharField(max_length=150)


class NamespaceTransferOut(serializers.Serializer):  # type: ignore[type-arg]
    namespace = serializers.CharField()
    owner = serializers.CharField()


class KeyCreateIn(serializers.Serializer):  # type: ignore[type-arg]
    public_key = serializers.CharField(max_length=2000)
    label = serializers.CharField(  # type: ignore[assignment]
        required=False, default="", allow_blank=True, max_length=200
    )


class KeyRevokeIn(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)
