"""Accounts as the plain dicts that the API's output serializers describe.

Used by the accounts API and by the packs API (a resolution lists the
namespace's keys). Not here: reads (``selectors``) or the serializers.
"""

from __future__ import annotations

from typing import Any

from .models import Namespace, SigningKey
from .selectors import namespace_keys

__all__ = ["key_dict", "namespace_dict"]


def key_dict(key: SigningKey) -> dict[str, Any]:
    return {
        "keyid": key.keyid,
        "public_key": key.public_key,
        "label": key.label,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "revocation_reason": key.revocation_reason,
    }


def namespace_dict(namespace: Namespace) -> dict[str, Any]:
    return {
        "name": namespace.name,
        "kind": namespace.kind,
        "display_name": namespace.display_name,
        "created_at": namespace.created_at,
        "keys": [key_dict(k) for k in namespace_keys(namespace=namespace)],
    }
