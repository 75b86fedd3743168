"""Forms of the web marketplace: they validate input at the edge, services do the work."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from memstore.commerce.money import CURRENCY_EXPONENTS

_USERNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z")


class SignupForm(forms.Form):
    username = forms.CharField(
        max_length=40,
        help_text="Lower-case letters, digits and '-'. It is also your publishing namespace.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(
        help_text="For password resets.", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        min_length=8, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_username(self) -> str:
        value: str = self.cleaned_data["username"].strip()
        if not _USERNAME_RE.match(value):
            raise forms.ValidationError("Use lower-case letters, digits and '-' (at most 40).")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password"):
            try:
                password_validation.validate_password(data["password"])
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class LoginForm(AuthenticationForm):
    pass


class CardForm(forms.Form):
    """The sandbox card form. A real processor would tokenise the card in the browser."""

    #: One order per checkout (kept across a declined card), one charge per payment key.
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    payment_key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    card_number = forms.CharField(
        max_length=23,
        label="Card number",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "placeholder": "4242 4242 4242 4242",
            }
        ),
    )
    expiry = forms.CharField(
        max_length=7,
        label="Expiry (MM/YY)",
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "placeholder": "12/34"}),
    )
    cvc = forms.CharField(
        max_length=4,
        label="CVC",
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123"}
        ),
    )

    def clean_card_number(self) -> str:
        digits = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not (digits.isascii() and digits.isdigit()) or not 12 <= len(digits) <= 19:
            raise forms.ValidationError("Enter the card number (digits only).")
        return digits

    def clean_expiry(self) -> str:
        value: str = self.cleaned_data["expiry"].strip()
        if not re.fullmatch(r"(0[1-9]|1[0-2])\s*/\s*(\d{2})", value):
            raise forms.ValidationError("Use MM/YY.")
        return value

    def clean_cvc(self) -> str:
        value: str = self.cleaned_data["cvc"].strip()
        if not re.fullmatch(r"\d{3,4}", value):
            raise forms.ValidationError("3 or 4 digits.")
        return value


class StripeCheckoutForm(forms.Form):
    """Checkout through Stripe: the card is typed into Stripe.js's fields (Stripe Elements)
    and goes from the browser to Stripe; this form carries only the payment method id
    that Stripe.js made of it (``pm_...``, or ``card_...`` from a card token)."""

    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    payment_key = forms.CharField(max_length=100, widget=forms.HiddenInput)
    payment_method = forms.RegexField(
        regex=r"^(pm|card)_[A-Za-z0-9]{6,100}$", widget=forms.HiddenInput, required=True,
        error_messages={"required": "Enter your card in the card field.",
                        "invalid": "That is not a card made by Stripe.js."},
    )  # fmt: skip


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="e.g. memos on my laptop")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=True)

    def __init__(self, *args: Any, namespaces: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only scopes over the user's own namespaces are offered; the service still checks
        # every scope (a session may create any subset of what its user may do).
        choices = [("read", "read — install private and purchased packs")]
        choices.append(("publish:*", "publish:* — publish to all your namespaces"))
        choices += [(f"publish:{ns}", f"publish:{ns}") for ns in namespaces]
        choices.append(("admin:*", "admin:* — members and signing keys of all your namespaces"))
        choices += [(f"admin:{ns}", f"admin:{ns} — members and keys of {ns}") for ns in namespaces]
        choices.append(("tokens:create", "tokens:create — create tokens (a subset of its scopes)"))
        field = self.fields["scopes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = choices
        field.initial = ["read"]


class KeyRegisterForm(forms.Form):
    namespace = forms.ChoiceField()
    public_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "ed25519:MCowBQYDK2VwAyEA…"}),
        help_text="The public key printed by `memos keygen` (ed25519:… or PEM).",
    )
    label = forms.CharField(max_length=200, required=False)

    def __init__(self, *args: Any, namespaces: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["namespace"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(ns, ns) for ns in namespaces]


class KeyRevokeForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class UploadForm(forms.Form):
    file = forms.FileField(label="Pack file (.memcube)")
    private = forms.BooleanField(
        required=False, help_text="Only members of the namespace see it (first version only)."
    )
    price = forms.CharField(
        max_length=20,
        required=False,
        help_text="Leave empty or 0 for a free pack.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"}),
    )
    currency = forms.ChoiceField(
        choices=[(c, c) for c in sorted(CURRENCY_EXPONENTS)], initial="EUR"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        raw = (data.get("price") or "").strip().replace(",", ".")
        currency = data.get("currency") or "EUR"
        try:
            amount = Decimal(raw or "0")
        except InvalidOperation:
            self.add_error("price", "Enter an amount such as 19.99.")
            return data
        exponent = CURRENCY_EXPONENTS.get(currency, 2)
        minor = amount * (10**exponent)
        if amount < 0 or minor != minor.to_integral_value():
            self.add_error("price", f"Enter a positive amount with at most {exponent} decimals.")
            return data
        data["price_amount_minor"] = int(minor)
        return data


class RefundForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class YankForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class NamespaceCreateForm(forms.Form):
    name = forms.RegexField(
        regex=_USERNAME_RE, max_length=40, help_text="lower-case letters, digits, '-'"
    )
    display_name = forms.CharField(max_length=200, required=False)
