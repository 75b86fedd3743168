from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

app_name = "api"

PACK = "packs/<str:namespace>/<str:name>"
VERSION = f"{PACK}/versions/<str:version>"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("resolve/<str:namespace>/<str:name>", views.ResolveView.as_view(), name="resolve"),
    path("blobs/<str:sha256>", views.BlobDownloadView.as_view(), name="blob-download"),
    path("packs/upload", views.PublishView.as_view(), name="publish"),
    path("uploads/", views.UploadCreateView.as_view(), name="upload-create"),
    path("uploads/<uuid:session_id>", views.UploadDetailView.as_view(), name="upload-detail"),
    path(
        "uploads/<uuid:session_id>/complete",
        views.UploadCompleteView.as_view(),
        name="upload-complete",
    ),
    path("packs/", views.PackListView.as_view(), name="pack-list"),
    path(PACK, views.PackDetailView.as_view(), name="pack-detail"),
    path(f"{PACK}/deprecate", views.PackDeprecateView.as_view(), name="pack-deprecate"),
    path(VERSION, views.VersionDetailView.as_view(), name="version-detail"),
    path(f"{VERSION}/yank", views.VersionYankView.as_view(), name="version-yank"),
    path(f"{VERSION}/unyank", views.VersionUnyankView.as_view(), name="version-unyank"),
    path("auth/tokens", views.TokenCreateView.as_view(), name="token-create"),
    path("auth/tokens/<int:token_id>", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("auth/whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("namespaces/", views.NamespaceCreateView.as_view(), name="namespace-create"),
    path(
        "namespaces/<str:namespace>", views.NamespaceDetailView.as_view(), name="namespace-detail"
    ),
    path(
        "namespaces/<str:namespace>/members",
        views.NamespaceMemberView.as_view(),
        name="namespace-members",
    ),
    path("namespaces/<str:namespace>/keys", views.KeyListCreateView.as_view(), name="key-list"),
    path(
        "namespaces/<str:namespace>/keys/<str:keyid>/revoke",
        views.KeyRevokeView.as_view(),
        name="key-revoke",
    ),
    path("search/memories", views.MemorySearchView.as_view(), name="search-memories"),
    path("search/packs", views.PackSearchView.as_view(), name="search-packs"),
]
