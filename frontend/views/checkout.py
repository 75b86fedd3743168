"""Buying: the checkout form, free claims and order receipts.

With Stripe (the default) the page loads Stripe.js (``conf.stripe_js_url``): the card is
typed into Stripe's own fields and never reaches this server, which gets only the
payment method id Stripe.js made of it and charges that. The demo sandbox (configured
explicitly, labelled on the page) keeps its simple card-number form.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from memstore.commerce import conf as commerce_conf
from memstore.commerce import selectors as commerce_selectors
from memstore.commerce import services as commerce
from memstore.commerce.errors import AlreadyOwnedError, CommerceError
from memstore.commerce.money import format_money
from memstore.commerce.providers.test import CARD_DECLINED, CARD_SUCCESS, CARD_TRANSIENT
from memstore.commerce.states import PaymentStatus
from memstore.packs.models import Pack, PackVersion

from .. import queries
from ..forms import CardForm, StripeCheckoutForm
from ._common import user_of, visible_pack

SANDBOX_CARDS = [
    (CARD_SUCCESS, "always succeeds"),
    (CARD_DECLINED, "always declined"),
    (CARD_TRANSIENT, "fails once, then succeeds on the automatic retry"),
]


CheckoutForm = CardForm | StripeCheckoutForm


def _sandbox() -> bool:
    return commerce_conf.payment_provider() == "test"


def _form(data: object = None, initial: dict[str, str] | None = None) -> CheckoutForm:
    form_class = CardForm if _sandbox() else StripeCheckoutForm
    return form_class(data, initial=initial)  # type: ignore[arg-type]


def _render_checkout(
    request: HttpRequest,
    pack: Pack,
    version: PackVersion,
    form: CheckoutForm,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    sandbox = _sandbox()
    return render(
        request,
        "frontend/checkout.html",
        {
            "pack": pack,
            "version": version,
            "price": format_money(version.price_amount_minor, version.price_currency),
            "form": form,
            "sandbox": sandbox,
            "sandbox_cards": SANDBOX_CARDS,
            "stripe_js_url": "" if sandbox else commerce_conf.stripe_js_url(),
            "stripe_publishable_key": "" if sandbox else commerce_conf.stripe_publishable_key(),
            "payment_error": error,
        },
        status=status,
    )


@login_required
def checkout(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    pack = visible_pack(request, namespace, name)
    user = user_of(request)
    version = queries.current_version(pack)
    if version is None:
        raise Http404("nothing to buy")
    if commerce_selectors.user_owns_pack(user=user, pack=pack):
        messages.info(request, f"{pack.full_name} is already in your library.")
        return redirect("frontend:library")
    if not version.is_paid:
        return redirect("frontend:pack", namespace=namespace, name=name)
    if request.method != "POST":
        initial = {"idempotency_key": uuid.uuid4().hex, "payment_key": uuid.uuid4().hex}
        return _render_checkout(request, pack, version, _form(initial=initial))
    form = _form(request.POST)
    if not form.is_valid():
        return _render_checkout(request, pack, version, form, status=400)
    key = form.cleaned_data["idempotency_key"]
    try:
        order = commerce.order_create(buyer=user, packs=[pack], idempotency_key=key)
        payment = commerce.payment_capture(
            order=order,
            payment_method=form.cleaned_data[
                "card_number" if isinstance(form, CardForm) else "payment_method"
            ],
            idempotency_key=form.cleaned_data["payment_key"],
        )
    except AlreadyOwnedError:
        messages.info(request, f"{pack.full_name} is already in your library.")
        return redirect("frontend:library")
    except CommerceError as exc:
        form.add_error(None, exc.message)
        return _render_checkout(request, pack, version, form, status=400)
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED):
        messages.success(request, f"Payment received: {pack.full_name} is in your library.")
        return redirect("frontend:order", public_id=payment.order.public_id)
    if payment.status == PaymentStatus.PENDING:
        # This order's charge is in flight (a second submit of the same form): its receipt
        # shows the outcome; the card form again would only invite a second payment.
        messages.info(request, "Your payment is being processed; this page shows its outcome.")
        return redirect("frontend:order", public_id=payment.order.public_id)
    # A transient failure retries under the same payment key; a decline needs a new one.
    payment_key = (
        payment.idempotency_key if payment.status == PaymentStatus.FAILED else uuid.uuid4().hex
    )
    fresh = _form(initial={"idempotency_key": key, "payment_key": payment_key})
    if payment.status == PaymentStatus.DECLINED:
        error = f"Your card was declined ({payment.error_code}). Try another card."
    else:
        error = "The payment processor had a temporary problem. Please try again."
    return _render_checkout(request, pack, version, fresh, status=402, error=error)


@login_required
@require_POST
def claim(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    pack = visible_pack(request, namespace, name)
    try:
        commerce.free_pack_claim(user=user_of(request), pack=pack)
    except CommerceError as exc:
        messages.error(request, exc.message)
        return redirect("frontend:pack", namespace=namespace, name=name)
    messages.success(request, f"{pack.full_name} was added to your library.")
    return redirect("frontend:library")


@login_required
def order_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    order = commerce_selectors.order_for_buyer(buyer=user_of(request), public_id=public_id)
    if order is None:
        raise Http404("no such order")
    return render(request, "frontend/order.html", {"order": order})
