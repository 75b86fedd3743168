"""OCI registries as a second home for MIP packs: push to and install from ``oci://`` references.

A pack maps onto an OCI image manifest (``runtime/oci/MAPPING.md``): its signed MIP manifest is
the config, each distinct blob one layer, each signature one layer. Any OCI distribution registry
(distribution, Harbor, GHCR, ECR, Artifactory, zot) stores it; the signatures travel with it, so
trust does not depend on the registry.

* :func:`push_pack` -- a ``.memcube`` file into ``oci://HOST/REPO:TAG`` (blobs the registry has
  are not sent again);
* :func:`install_from_oci` -- verify the signed manifest with the caller's keys, then install
  through :class:`runtime.install.Installer` (only the blobs the engine uses);
* :class:`OCIPackSource` -- the installer's ``PackSource`` over an OCI repository;
* :class:`OCIClient` -- the distribution API subset (httpx; transport and auth injectable);
  :class:`TokenAuth` -- the registry token challenge (anonymous, or username and password);
* :func:`parse_reference` / :class:`OCIReference`; :class:`OCIError` (``oci.*`` codes).

Not here: MemStore's own registry (:mod:`runtime.client`), the trust rule (:mod:`protocol.trust`).
"""

from __future__ import annotations

from .auth import TokenAuth
from .client import OCIClient
from .errors import OCIError
from .install import install_from_oci
from .mapping import (
    ARTIFACT_TYPE,
    BLOB_MEDIA_TYPE,
    CONFIG_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
    SIGNATURE_MEDIA_TYPE,
    OCIManifest,
    build_manifest,
    parse_manifest,
)
from .push import PushResult, push_pack
from .reference import OCIReference, is_oci_reference, parse_reference
from .source import OCIPackSource

__all__ = [
    "ARTIFACT_TYPE",
    "BLOB_MEDIA_TYPE",
    "CONFIG_MEDIA_TYPE",
    "OCI_MANIFEST_MEDIA_TYPE",
    "SIGNATURE_MEDIA_TYPE",
    "OCIClient",
    "OCIError",
    "OCIManifest",
    "OCIPackSource",
    "OCIReference",
    "PushResult",
    "TokenAuth",
    "build_manifest",
    "install_from_oci",
    "is_oci_reference",
    "parse_manifest",
    "parse_reference",
    "push_pack",
]
