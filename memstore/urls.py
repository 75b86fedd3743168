"""The registry's URLs: the one table of the REST API under ``/api/v1/`` (namespace ``api``).

It routes to each domain's views, ``memstore/<domain>/apis.py``, and is included by
the site's URLs (:mod:`server.urls`). It sits above the domains (no domain imports
it), and :mod:`memstore.api` below them. Not here: the views themselves, the web
marketplace's URLs (``frontend.urls``).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .accounts import apis as accounts
from .commerce import apis as commerce
from .packs import apis as packs
from .packs import blob_apis as blobs
from .packs import like_apis as likes
from .search import apis as search
from .storage import apis as storage
from .transparency import apis as tlog
from .tuf import apis as tuf

app_name = "api"

PACK = "packs/<str:namespace>/<str:name>"
VERSION = f"{PACK}/versions/<str:version>"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("resolve/<str:namespace>/<str:name>", packs.ResolveView.as_view(), name="resolve"),
    path("log/tree-head", tlog.TreeHeadView.as_view(), name="log-tree-head"),
    path("log/entries", tlog.EntriesView.as_view(), name="log-entries"),
    path("log/proof/inclusion", tlog.InclusionProofView.as_view(), name="log-inclusion"),
    path("log/proof/consistency", tlog.ConsistencyProofView.as_view(), name="log-consistency"),
    # The fixed blobs/... paths come before blobs/<sha256>, which would match them.
    path("blobs/missing", blobs.BlobsMissingView.as_view(), name="blobs-missing"),
    path("blobs/uploads", blobs.BlobUploadCreateView.as_view(), name="blob-upload-create"),
    path(
        "blobs/uploads/<uuid:upload_id>",
        blobs.BlobUploadDetailView.as_view(),
        name="blob-upload-detail",
    ),
    path(
        "blobs/uploads/<uuid:upload_id>/complete",
        blobs.BlobUploadCompleteView.as_view(),
        name="blob-upload-complete",
    ),
    path("blobs/sha256/<str:sha256>", blobs.BlobView.as_view(), name="blob"),
    path("blobs/<str:sha256>", storage.BlobDownloadView.as_view(), name="blob-download"),
    path("packs/upload", packs.PublishView.as_view(), name="publish"),
    path(
        "packs/check-manifest",
        blobs.CheckManifestView.as_view(),
        name="check-manifest",
    ),
    path(
        "packs/publish-manifest",
        blobs.PublishManifestView.as_view(),
        name="publish-manifest",
    ),
    path("uploads/", packs.UploadCreateView.as_view(), name="upload-create"),
    path("uploads/<uuid:session_id>", packs.UploadDetailView.as_view(), name="upload-detail"),
    path(
        "uploads/<uuid:session_id>/complete",
        packs.UploadCompleteView.as_view(),
        name="upload-complete",
    ),
    path("packs/", packs.PackListView.as_view(), name="pack-list"),
    path(PACK, packs.PackDetailView.as_view(), name="pack-detail"),
    path(f"{PACK}/deprecate", packs.PackDeprecateView.as_view(), name="pack-deprecate"),
    path(f"{PACK}/like", likes.PackLikeView.as_view(), name="pack-like"),
    path(VERSION, packs.VersionDetailView.as_view(), name="version-detail"),
    path(f"{VERSION}/yank", packs.VersionYankView.as_view(), name="version-yank"),
    path(f"{VERSION}/unyank", packs.VersionUnyankView.as_view(), name="version-unyank"),
    path("payments/stripe/webhook", commerce.StripeWebhookView.as_view(), name="stripe-webhook"),
    path("auth/tokens", accounts.TokenCreateView.as_view(), name="token-create"),
    path("auth/tokens/<int:token_id>", accounts.TokenRevokeView.as_view(), name="token-revoke"),
    path("auth/whoami", accounts.WhoAmIView.as_view(), name="whoami"),
    path("namespaces/", accounts.NamespaceCreateView.as_view(), name="namespace-create"),
    path(
        "namespaces/<str:namespace>",
        accounts.NamespaceDetailView.as_view(),
        name="namespace-detail",
    ),
    path(
        "namespaces/<str:namespace>/members",
        accounts.NamespaceMemberView.as_view(),
        name="namespace-members",
    ),
    path(
        "namespaces/<str:namespace>/transfer",
        accounts.NamespaceTransferView.as_view(),
        name="namespace-transfer",
    ),
    path("namespaces/<str:namespace>/keys", accounts.KeyListCreateView.as_view(), name="key-list"),
    path(
        "namespaces/<str:namespace>/keys/<str:keyid>/revoke",
        accounts.KeyRevokeView.as_view(),
        name="key-revoke",
    ),
    path("search/memories", search.MemorySearchView.as_view(), name="search-memories"),
    path("search/packs", search.PackSearchView.as_view(), name="search-packs"),
    path("tuf/<str:filename>", tuf.MetadataFileView.as_view(), name="tuf-metadata"),
    path(
        "tuf/namespaces/<str:namespace>/keys/<str:keyid>/endorse",
        tuf.KeyEndorseView.as_view(),
        name="tuf-key-endorse",
    ),
    path(
        "tuf/namespaces/<str:namespace>/keys/<str:keyid>/compromised",
        tuf.KeyCompromisedView.as_view(),
        name="tuf-key-compromised",
    ),
]
