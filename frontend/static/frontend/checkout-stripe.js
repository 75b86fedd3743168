// Checkout through Stripe: the card is typed into Stripe.js's own fields (Stripe Elements)
// and sent by Stripe.js to Stripe; this page posts only the payment method id Stripe.js
// made of it, and the server charges that (PaymentIntent, idempotency key).
(function () {
  "use strict";
  var form = document.getElementById("stripe-checkout");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(form.getAttribute("data-publishable-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var field = form.querySelector("input[name=payment_method]");
  var errors = document.getElementById("card-errors");
  var button = form.querySelector("button[type=submit]");
  var busy = false;

  function fail(message) {
    errors.textContent = message || "The card could not be used. Check it and try again.";
    busy = false;
    button.removeAttribute("aria-busy");
    button.disabled = false;
  }

  async function paymentMethodId() {
    var made = await stripe.createPaymentMethod({ type: "card", card: card });
    if (made && made.paymentMethod) { return made.paymentMethod.id; }
    if (made && made.error) { throw made.error; }
    // localstripe's fake Stripe.js (tests, embedded demo) has no createPaymentMethod;
    // its card tokens carry a card id that PaymentIntents accept.
    var token = await stripe.createToken(card);
    if (token && token.token && token.token.card) { return token.token.card.id; }
    throw (token && token.error) || {};
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }  // a double click pays once (the server is idempotent too)
    busy = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    errors.textContent = "";
    paymentMethodId().then(function (id) {
      field.value = id;
      form.submit();  // no submit event: straight to the server
    }, function (error) { fail(error && error.message); });
  });
}());
