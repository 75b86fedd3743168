from frontend.rendering import render_markdown


def test_markdown_is_rendered_and_sanitised():
    html = render_markdown(
        "# Title\n\n<img src=x onerror=alert(1)> <iframe src=//evil></iframe>\n\n"
        "[ok](https://example.org) [bad](javascript:alert(1))\n\n```\ncode\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h2>Title</h2>" in html  # shifted: the page keeps one h1
    assert "onerror" not in html and "<img" not in html and "<iframe" not in html
    assert 'href="https://example.org"' in html and 'rel="nofollow noopener noreferrer"' in html
    assert "javascript:" not in html
    assert "<pre><code>code" in html and "<table>" in html


def test_card_summary_is_the_first_paragraph_as_plain_text():
    from frontend.queries import _summary

    text = "# Title\n\nSome **bold** and a [link](https://x.org).\n\n* a list"
    assert _summary(text) == "Some bold and a link."
    assert _summary("x" * 300).endswith("…") and len(_summary("x" * 300)) == 160


def test_highlight_escapes_then_marks_query_words():
    from frontend.templatetags.frontend import highlight

    out = highlight("Never <b>unpickle</b> untrusted data", "pickle UNTRUSTED a <b>")
    assert out == "Never &lt;b&gt;unpickle&lt;/b&gt; <mark>untrusted</mark> data"


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["EUR", "USD", "JPY"]))
def test_upload_price_round_trips_to_minor_units(amount, currency):
    from decimal import Decimal

    from frontend.forms import UploadForm
    from memstore.commerce.money import CURRENCY_EXPONENTS

    exponent = CURRENCY_EXPONENTS[currency]
    text = str(Decimal(amount).scaleb(-exponent)) if exponent else str(amount)
    form = UploadForm(data={"price": text, "currency": currency}, files={})
    form.is_valid()  # the file is missing; the price is still parsed
    assert form.cleaned_data["price_amount_minor"] == amount


@given(st.text(max_size=30), st.text(max_size=10), st.text(max_size=6))
def test_card_form_never_raises_on_any_input(number, expiry, cvc):
    from frontend.forms import CardForm

    form = CardForm(
        data={
            "idempotency_key": "k",
            "payment_key": "p",
            "card_number": number,
            "expiry": expiry,
            "cvc": cvc,
        }
    )
    if form.is_valid():
        assert (
            form.cleaned_data["card_number"].isascii()
            and form.cleaned_data["card_number"].isdigit()
        )
