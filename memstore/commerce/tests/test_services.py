import threading

import pytest
from django.db import connection

from memstore.commerce import selectors, services
from memstore.commerce.errors import (
    AlreadyOwnedError,
    CurrencyError,
    IllegalTransitionError,
    NotPurchasableError,
    PaymentInProgressError,
    RefundNotAllowedError,
)
from memstore.commerce.models import LedgerEntry, Order, Payment, Refund
from memstore.commerce.money import Money
from memstore.commerce.providers import (
    CARD_DECLINED,
    CARD_SUCCESS,
    CARD_TRANSIENT,
    ChargeOutcome,
    ChargeResult,
    TestProvider,
)
from memstore.packs.models import Entitlement, Pack

from .factories import make_pack, make_user, make_version

pytestmark = pytest.mark.django_db


class CountingProvider(TestProvider):
    """The sandbox provider, counting the charges it was asked for."""

    def __init__(self):
        self.charges = []

    def charge(self, request):
        self.charges.append(request)
        return super().charge(request)


class AlwaysTransient(TestProvider):
    def charge(self, request):
        return ChargeResult(
            ChargeOutcome.TRANSIENT_FAILURE, error_code="processing_error", error_message="later"
        )


def no_sleep(_seconds):
    return None


@pytest.fixture
def buyer():
    return make_user("buyer")


@pytest.fixture
def paid_pack():
    return make_pack(name="atlas", price=1999, currency="EUR")


def buy(buyer, pack, card=CARD_SUCCESS, key="k-1", provider=None):
    order = services.order_create(buyer=buyer, packs=[pack], idempotency_key=key)
    payment = services.payment_capture(
        order=order, payment_method=card, idempotency_key=key, provider=provider, sleep=no_sleep
    )
    order.refresh_from_db()
    return order, payment


def test_order_create_snapshots_price_and_publisher(buyer, paid_pack):
    make_version(paid_pack, version="1.1.0", price=2500, currency="EUR")
    make_version(paid_pack, version="2.0.0", price=9999, currency="EUR", yanked=True)
    order = services.order_create(buyer=buyer, packs=[paid_pack, paid_pack], idempotency_key="a")
    assert (order.status, order.total_minor, order.currency) == ("pending", 2500, "EUR")
    (line,) = order.lines.all()
    assert line.description == f"{paid_pack.full_name}@1.1.0"
    assert line.publisher == paid_pack.namespace
    assert order.total == Money(2500, "EUR")


def test_order_create_is_idempotent_per_buyer_and_key(buyer, paid_pack):
    first = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="same")
    second = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="same")
    other_buyer = services.order_create(
        buyer=make_user(), packs=[paid_pack], idempotency_key="same"
    )
    assert first.pk == second.pk != other_buyer.pk
    assert Order.objects.count() == 2


def test_order_create_refuses_private_unversioned_mixed_currency_and_owned(buyer, paid_pack):
    with pytest.raises(NotPurchasableError):
        services.order_create(
            buyer=buyer, packs=[make_pack(private=True, price=100)], idempotency_key="p"
        )
    with pytest.raises(NotPurchasableError):
        services.order_create(
            buyer=buyer,
            packs=[Pack.objects.create(namespace=paid_pack.namespace, name="empty")],
            idempotency_key="e",
        )
    with pytest.raises(NotPurchasableError):
        services.order_create(buyer=buyer, packs=[], idempotency_key="none")
    usd = make_pack(price=100, currency="USD")
    with pytest.raises(CurrencyError):
        services.order_create(buyer=buyer, packs=[paid_pack, usd], idempotency_key="m")
    buy(buyer, paid_pack)
    with pytest.raises(AlreadyOwnedError):
        services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="again")


def test_capture_with_the_success_card_pays_entitles_and_books_earnings(buyer, paid_pack):
    order, payment = buy(buyer, paid_pack)
    assert payment.status == "succeeded" and payment.attempts == 1
    assert payment.reference.startswith("ch_test_") and payment.card_last4 == "4242"
    assert order.status == "paid" and order.paid_at is not None
    ent = Entitlement.objects.get(user=buyer, pack=paid_pack)
    assert ent.revoked_at is None and ent.source == "purchase"
    assert order.lines.get().entitlement == ent
    sale = LedgerEntry.objects.get()
    assert (sale.kind, sale.gross_minor, sale.fee_minor, sale.net_minor) == (
        "sale",
        1999,
        200,
        1799,
    )
    assert selectors.publisher_balance(namespace=paid_pack.namespace) == [Money(1799, "EUR")]
    assert [item.pack for item in selectors.library_for_user(user=buyer)] == [paid_pack]
    assert selectors.user_owns_pack(user=buyer, pack=paid_pack)


def test_declined_card_leaves_the_order_pending_and_grants_nothing(buyer, paid_pack):
    order, payment = buy(buyer, paid_pack, card=CARD_DECLINED)
    assert payment.status == "declined" and payment.error_code == "card_declined"
    assert order.status == "pending"
    assert not Entitlement.objects.exists() and not LedgerEntry.objects.exists()
    # Paying again with another card and a new key works.
    payment2 = services.payment_capture(
        order=order, payment_method=CARD_SUCCESS, idempotency_key="k-2"
    )
    order.refresh_from_db()
    assert payment2.status == "succeeded" and order.status == "paid"


def test_resubmitting_a_declined_key_does_not_charge_again(buyer, paid_pack):
    provider = CountingProvider()
    order, payment = buy(buyer, paid_pack, card=CARD_DECLINED, provider=provider)
    again = services.payment_capture(
        order=order, payment_method=CARD_SUCCESS, idempotency_key="k-1", provider=provider
    )
    assert again.pk == payment.pk and again.status == "declined"
    assert len(provider.charges) == 1


def test_transient_card_is_retried_with_the_same_key_and_succeeds(buyer, paid_pack):
    provider = CountingProvider()
    sleeps = []
    order = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="t")
    payment = services.payment_capture(
        order=order,
        payment_method=CARD_TRANSIENT,
        idempotency_key="t",
        provider=provider,
        sleep=sleeps.append,
    )
    assert payment.status == "succeeded" and payment.attempts == 2
    assert [c.idempotency_key for c in provider.charges] == ["t", "t"]
    assert [c.attempt for c in provider.charges] == [1, 2]
    assert len(sleeps) == 1


def test_exhausted_transient_failures_leave_a_failed_payment_that_a_resubmit_retries(
    buyer, paid_pack, settings
):
    settings.MEMSTORE_CHARGE_ATTEMPTS = 2
    order, payment = buy(buyer, paid_pack, provider=AlwaysTransient())
    assert payment.status == "failed" and payment.attempts == 2 and order.status == "pending"
    payment = services.payment_capture(
        order=order, payment_method=CARD_SUCCESS, idempotency_key="k-1"
    )
    assert payment.status == "succeeded" and payment.attempts == 3
    assert Payment.objects.count() == 1


def test_double_submit_with_the_same_key_charges_once(buyer, paid_pack):
    provider = CountingProvider()
    order, first = buy(buyer, paid_pack, provider=provider)
    order2, second = buy(buyer, paid_pack, provider=provider)
    assert order2.pk == order.pk and second.pk == first.pk
    assert len(provider.charges) == 1
    assert Payment.objects.count() == 1 and LedgerEntry.objects.count() == 1


def test_a_second_key_on_a_paid_order_returns_the_captured_payment(buyer, paid_pack):
    provider = CountingProvider()
    order, first = buy(buyer, paid_pack, provider=provider)
    other = services.payment_capture(
        order=order, payment_method=CARD_SUCCESS, idempotency_key="another-tab", provider=provider
    )
    assert other.pk == first.pk and len(provider.charges) == 1


def test_key_of_another_order_is_refused(buyer, paid_pack):
    buy(buyer, paid_pack)
    other_order = services.order_create(
        buyer=buyer, packs=[make_pack(price=5)], idempotency_key="o"
    )
    with pytest.raises(ValueError, match="another order"):
        services.payment_capture(
            order=other_order, payment_method=CARD_SUCCESS, idempotency_key="k-1"
        )


def test_cancelled_orders_cannot_be_paid_and_paid_orders_cannot_be_cancelled(buyer, paid_pack):
    order = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="c")
    services.order_cancel(order=order)
    with pytest.raises(IllegalTransitionError):
        services.payment_capture(order=order, payment_method=CARD_SUCCESS, idempotency_key="c")
    paid, _ = buy(buyer, paid_pack, key="d")
    with pytest.raises(IllegalTransitionError):
        services.order_cancel(order=paid)


def test_refund_revokes_the_entitlement_and_reverses_the_ledger(buyer, paid_pack):
    order, payment = buy(buyer, paid_pack)
    publisher = paid_pack.namespace.memberships.get().user
    refund = services.order_refund(order=order, actor=publisher, reason="asked")
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, payment.status) == ("refunded", "refunded")
    assert refund.amount_minor == 1999 and refund.reference.startswith("re_test_")
    assert Entitlement.objects.get(user=buyer, pack=paid_pack).revoked_at is not None
    assert not selectors.user_owns_pack(user=buyer, pack=paid_pack)
    assert selectors.library_for_user(user=buyer) == []
    assert selectors.publisher_balance(namespace=paid_pack.namespace) == [Money(0, "EUR")]
    kinds = sorted(LedgerEntry.objects.values_list("kind", "net_minor"))
    assert kinds == [("refund", -1799), ("sale", 1799)]
    # Idempotent.
    assert services.order_refund(order=order, actor=publisher).pk == refund.pk
    assert Refund.objects.count() == 1


def test_buying_again_after_a_refund_re_grants(buyer, paid_pack):
    order, _ = buy(buyer, paid_pack)
    services.order_refund(order=order, actor=paid_pack.namespace.memberships.get().user)
    order2, payment2 = buy(buyer, paid_pack, key="k-again")
    assert payment2.status == "succeeded" and order2.pk != order.pk
    assert selectors.user_owns_pack(user=buyer, pack=paid_pack)


def test_refund_needs_staff_or_the_publisher(buyer, paid_pack):
    order, _ = buy(buyer, paid_pack)
    with pytest.raises(RefundNotAllowedError):
        services.order_refund(order=order, actor=buyer)
    staff = make_user()
    staff.is_staff = True
    staff.save()
    services.order_refund(order=order, actor=staff)


def test_refund_of_an_unpaid_order_is_refused(buyer, paid_pack):
    order = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="u")
    staff = make_user()
    staff.is_staff = True
    with pytest.raises(RefundNotAllowedError):
        services.order_refund(order=order, actor=staff)


def test_free_pack_is_claimed_in_one_step_and_idempotently(buyer):
    free = make_pack(name="free", price=0)
    order = services.free_pack_claim(user=buyer, pack=free)
    again = services.free_pack_claim(user=buyer, pack=free)
    assert order.pk == again.pk and order.status == "paid" and order.total_minor == 0
    assert not order.payments.exists() and not LedgerEntry.objects.exists()
    assert Entitlement.objects.get(user=buyer, pack=free).source == "free"
    assert selectors.user_owns_pack(user=buyer, pack=free)
    assert [i.pack for i in selectors.library_for_user(user=buyer)] == [free]


def test_free_claim_refuses_a_paid_pack(buyer, paid_pack):
    with pytest.raises(NotPurchasableError):
        services.free_pack_claim(user=buyer, pack=paid_pack)


def test_capture_of_a_free_order_is_refused(buyer):
    free = make_pack(price=0)
    order = services.order_create(buyer=buyer, packs=[free], idempotency_key="f")
    with pytest.raises(NotPurchasableError):
        services.payment_capture(order=order, payment_method=CARD_SUCCESS, idempotency_key="f")


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_charges_once():
    buyer = make_user("racer")
    pack = make_pack(name="contested", price=500)
    provider = CountingProvider()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def submit():
        try:
            barrier.wait(timeout=10)
            order = services.order_create(buyer=buyer, packs=[pack], idempotency_key="double")
            results.append(
                services.payment_capture(
                    order=order,
                    payment_method=CARD_SUCCESS,
                    idempotency_key="double",
                    provider=provider,
                )
            )
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(results) == 2 and results[0].pk == results[1].pk
    assert len(provider.charges) == 1
    assert Order.objects.count() == 1 and Payment.objects.count() == 1
    assert LedgerEntry.objects.count() == 1
    assert Entitlement.objects.filter(user=buyer, pack=pack).count() == 1


def test_a_second_pending_order_for_an_owned_pack_is_cancelled_not_charged(buyer, paid_pack):
    provider = CountingProvider()
    tab_a = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="tab-a")
    tab_b = services.order_create(buyer=buyer, packs=[paid_pack], idempotency_key="tab-b")
    services.payment_capture(
        order=tab_a, payment_method=CARD_SUCCESS, idempotency_key="pay-a", provider=provider
    )
    with pytest.raises(AlreadyOwnedError):
        services.payment_capture(
            order=tab_b, payment_method=CARD_SUCCESS, idempotency_key="pay-b", provider=provider
        )
    tab_b.refresh_from_db()
    assert tab_b.status == "cancelled" and len(provider.charges) == 1


@pytest.mark.django_db(transaction=True)
def test_two_tabs_paying_two_orders_for_one_pack_concurrently_charge_once():
    buyer = make_user("twotabs")
    pack = make_pack(name="tabs", price=700)
    orders = [
        services.order_create(buyer=buyer, packs=[pack], idempotency_key=f"o{i}") for i in range(2)
    ]
    provider = CountingProvider()
    barrier = threading.Barrier(2)
    outcomes = []

    def pay(order, key):
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                services.payment_capture(
                    order=order, payment_method=CARD_SUCCESS, idempotency_key=key, provider=provider
                ).status
            )
        except AlreadyOwnedError:
            outcomes.append("already_owned")
        except PaymentInProgressError:
            outcomes.append("in_progress")
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(o, f"p{i}")) for i, o in enumerate(orders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # The loser either saw the winner's charge in flight (its order stays pending, uncharged)
    # or the pack already owned (its order is cancelled): never a second charge.
    assert sorted(outcomes) in (["already_owned", "succeeded"], ["in_progress", "succeeded"])
    assert len(provider.charges) == 1
    assert sorted(Order.objects.values_list("status", flat=True)) in (
        ["cancelled", "paid"],
        ["paid", "pending"],
    )


def test_namespace_members_cannot_buy_their_own_pack(paid_pack):
    owner = paid_pack.namespace.memberships.get().user
    with pytest.raises(NotPurchasableError, match="members of"):
        services.order_create(buyer=owner, packs=[paid_pack], idempotency_key="own")
