"""The commerce API: Stripe's webhook endpoint (``POST /api/v1/payments/stripe/webhook``).

Unauthenticated by design: the ``Stripe-Signature`` header, checked against
``MEMSTORE_STRIPE_WEBHOOK_SECRET`` before anything is read, is the proof.
A refused signature answers 400 ``commerce.webhook_signature``. Not here: what an
event does (``settlement.webhook_handle``).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services


class StripeWebhookView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    @extend_schema(
        operation_id="payments_stripe_webhook",
        request=None,
        responses={200: OpenApiResponse(description="applied"), 400: OpenApiResponse()},
    )
    def post(self, request: Request) -> Response:
        outcome = services.webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        return Response({"received": True, "outcome": outcome})
