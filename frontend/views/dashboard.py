"""The publisher dashboard: upload a version (the API's publish service), ingestion
status, sales and refunds.

Not here: any publishing rule (``memstore.packs.upload_publish`` and the services
behind it check the size, the account, the role and the signatures).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from memstore.accounts.models import Role
from memstore.accounts.selectors import has_role
from memstore.accounts.services import namespace_create
from memstore.commerce import selectors as commerce_selectors
from memstore.commerce import services as commerce
from memstore.commerce.errors import CommerceError
from memstore.commerce.models import LedgerEntry, Order
from memstore.commerce.money import Money
from memstore.errors import RegistryError
from memstore.packs.models import PackVersion
from memstore.packs.services import Price, version_unyank, version_yank
from memstore.packs.upload_publish import pack_publish_upload
from protocol import MIPError

from .. import queries
from ..forms import NamespaceCreateForm, RefundForm, UploadForm, YankForm
from ._common import actor_of, error_text, user_of


def _publish(request: HttpRequest, form: UploadForm) -> PackVersion:
    amount = form.cleaned_data.get("price_amount_minor", 0)
    price = Price(amount_minor=amount, currency=form.cleaned_data["currency"] if amount else "")
    return pack_publish_upload(
        actor=actor_of(request),
        upload=form.cleaned_data["file"],
        private=form.cleaned_data["private"],
        price=price,
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    namespaces = queries.maintained_namespaces(user=user)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = _publish(request, form)
        except (RegistryError, MIPError) as exc:
            form.add_error("file", error_text(exc))
        else:
            messages.success(
                request,
                f"Published {version.pack.full_name}@{version.version}. Indexing its memories…",
            )
            return redirect("frontend:dashboard")
    sales: list[LedgerEntry] = []
    balances: list[tuple[str, Money]] = []
    for ns in namespaces:
        sales.extend(commerce_selectors.publisher_sales(namespace=ns)[:50])
        balances.extend((ns.name, m) for m in commerce_selectors.publisher_balance(namespace=ns))
    return render(
        request,
        "frontend/dashboard/index.html",
        {
            "form": form,
            "namespaces": namespaces,
            "versions": queries.dashboard_versions(namespaces=namespaces),
            "sales": sales,
            "balances": balances,
            "refund_form": RefundForm(),
            "namespace_form": NamespaceCreateForm(),
        },
        status=400 if form.errors else 200,
    )


@login_required
def ingest_status(request: HttpRequest, version_id: int) -> HttpResponse:
    """The ingestion status of one version, as JSON (polled by the dashboard's script)."""
    version = _maintained_version(request, version_id, live_only=False)
    job = getattr(version, "ingest", None)
    return JsonResponse(
        {
            "status": job.status if job else "pending",
            "memories": job.memory_count if job else 0,
            "error": job.error if job else "",
        }
    )


@login_required
@require_POST
def refund(request: HttpRequest, public_id: str) -> HttpResponse:
    order = Order.objects.filter(public_id=public_id).first()
    if order is None:
        raise Http404("no such order")
    form = RefundForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        commerce.order_refund(order=order, actor=user_of(request), reason=reason)
    except CommerceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The order was refunded and the buyer's access revoked.")
    return redirect("frontend:dashboard")


def _maintained_version(
    request: HttpRequest, version_id: int, *, live_only: bool = True
) -> PackVersion:
    """A version of a namespace the user maintains (404 otherwise, existence not leaked)."""
    versions = PackVersion.objects.select_related("pack__namespace", "ingest")
    if live_only:
        versions = versions.filter(deleted_at__isnull=True)
    version = versions.filter(pk=version_id).first()
    if version is None or not has_role(
        user=user_of(request), namespace=version.pack.namespace, at_least=Role.MAINTAINER
    ):
        raise Http404("no such version")
    return version


@login_required
@require_POST
def yank(request: HttpRequest, version_id: int) -> HttpResponse:
    """Yank (with a reason) or, with ``undo``, unyank a version; same services as the API."""
    version = _maintained_version(request, version_id)
    form = YankForm(request.POST)
    undo = request.POST.get("undo") == "1"
    try:
        if undo:
            version_unyank(actor=actor_of(request), version=version)
        else:
            reason = form.cleaned_data["reason"] if form.is_valid() else ""
            version_yank(actor=actor_of(request), version=version, reason=reason)
    except RegistryError as exc:
        messages.error(request, error_text(exc))
    else:
        verb = "unyanked" if undo else "yanked"
        messages.success(request, f"{version.pack.full_name}@{version.version} {verb}.")
    return redirect("frontend:dashboard")


@login_required
@require_POST
def namespace_new(request: HttpRequest) -> HttpResponse:
    form = NamespaceCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Use lower-case letters, digits and '-' for the name.")
        return redirect("frontend:dashboard")
    try:
        ns = namespace_create(
            actor=actor_of(request),
            name=form.cleaned_data["name"],
            display_name=form.cleaned_data["display_name"],
        )
    except RegistryError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"Organisation {ns.name} created; you are its owner.")
    return redirect("frontend:dashboard")
