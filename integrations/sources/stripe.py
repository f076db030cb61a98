"""Stripe: billing events become `payment.*` and `subscription.*` events.

The user is the Stripe object's `metadata.user_id` (set it when you create the customer or
subscription), else the customer id (`cus_...`). The Stripe event id (`evt_...`) is the delivery id.
Both object shapes are read: before API version 2025-03-31 and after it (an invoice's subscription
under `parent.subscription_details`, billing periods on subscription items, no `invoice` on a
PaymentIntent).
"""

from __future__ import annotations

from typing import Any

from integrations.sources.base import Received, StripeSignature, WebhookEvent, dig, parse_time

# Stripe event type -> Hogsend event name, spelled as `journeys.shipped.constants.Events` spells it
# (the shipped journeys listen for these). Anything else is verified and ignored.
EVENT_NAMES = {
    "invoice.payment_failed": "payment.failed",
    "invoice.paid": "payment.succeeded",
    "invoice.payment_action_required": "payment.action_required",
    "invoice.upcoming": "invoice.upcoming",
    # One-off payments only: an invoice's own payment intent is already covered by invoice.*.
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.succeeded": "payment.succeeded",
    "customer.subscription.created": "subscription.created",
    "customer.subscription.updated": "subscription.updated",
    "customer.subscription.deleted": "subscription.cancelled",
    "customer.subscription.paused": "subscription.paused",
    "customer.subscription.resumed": "subscription.resumed",
    "customer.subscription.trial_will_end": "subscription.trial_will_end",
    "checkout.session.completed": "checkout.completed",
}


def _user_id(obj: dict[str, Any]) -> str:
    for path in (
        "metadata.user_id",
        "metadata.userId",
        "client_reference_id",  # Checkout: the id your page passed in
        "subscription_details.metadata.user_id",
        "parent.subscription_details.metadata.user_id",  # invoices since API 2025-03
    ):
        found = dig(obj, path)
        if found:
            return str(found)
    # The customer stands for the user, never the object itself (a contact per checkout session or
    # invoice would be nobody): no customer and no user id means no event.
    customer = obj.get("customer")
    if isinstance(customer, dict):
        return str(customer.get("id") or "")
    return str(customer or "")


def _invoice_made(payment_intent: dict[str, Any]) -> bool:
    """Whether this PaymentIntent pays an invoice (whose own `invoice.*` event already speaks).

    Until API version 2025-03-31 a PaymentIntent names its `invoice` (null for a one-off). Since,
    the field is gone and nothing on the PaymentIntent links it to an invoice (the link is an
    InvoicePayment, seen only through the API), so only a PaymentIntent that names its user in
    `metadata` counts as one-off; one without is taken to be an invoice's, as renewals are.
    """
    if "invoice" in payment_intent:
        return bool(payment_intent["invoice"])
    return not (dig(payment_intent, "metadata.user_id") or dig(payment_intent, "metadata.userId"))


def _properties(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    if kind == "invoice":
        return {
            "invoice_id": obj.get("id"),
            "amount_due": obj.get("amount_due"),
            "amount_paid": obj.get("amount_paid"),
            "currency": obj.get("currency"),
            "attempt_count": obj.get("attempt_count"),
            "next_payment_attempt": obj.get("next_payment_attempt"),
            "hosted_invoice_url": obj.get("hosted_invoice_url"),
            "billing_reason": obj.get("billing_reason"),
            "subscription_id": obj.get("subscription")
            or dig(obj, "parent.subscription_details.subscription"),
        }
    if kind == "payment_intent":
        return {
            "payment_intent_id": obj.get("id"),
            "amount": obj.get("amount"),
            "currency": obj.get("currency"),
            "failure_message": dig(obj, "last_payment_error.message"),
            "failure_code": dig(obj, "last_payment_error.code"),
        }
    if kind == "checkout.session":
        return {
            "checkout_session_id": obj.get("id"),
            "amount_total": obj.get("amount_total"),
            "currency": obj.get("currency"),
            "mode": obj.get("mode"),
            "payment_status": obj.get("payment_status"),
            "subscription_id": obj.get("subscription"),
        }
    if kind == "subscription":
        item = dig(obj, "items.data.0") or {}
        return {
            "subscription_id": obj.get("id"),
            "status": obj.get("status"),
            "plan": dig(item, "price.lookup_key") or dig(item, "price.id") or dig(obj, "plan.id"),
            "cancel_at_period_end": obj.get("cancel_at_period_end"),
            "trial_end": obj.get("trial_end"),
            "current_period_end": item.get("current_period_end") or obj.get("current_period_end"),
        }
    return {}


def _email(obj: dict[str, Any]) -> str | None:
    """The address Stripe has for the customer, if any (a customer may have none: then the
    contact has none, and its sends are recorded as skipped)."""
    customer = obj.get("customer")
    return (
        obj.get("customer_email")
        or obj.get("receipt_email")
        or dig(obj, "customer_details.email")
        or (customer.get("email") if isinstance(customer, dict) else None)  # expanded customer
        or None
    )


def stripe_map(delivery: Received) -> list[WebhookEvent]:
    event = delivery.payload
    name = EVENT_NAMES.get(event.get("type", ""))
    obj = dig(event, "data.object") or {}
    if name is None or not isinstance(obj, dict):
        return []
    kind = obj.get("object", "")
    if kind == "payment_intent" and _invoice_made(obj):
        return []
    user_id = _user_id(obj)
    if not user_id:
        return []
    return [
        WebhookEvent(
            name=name,
            user_id=user_id,
            email=_email(obj),
            properties={
                "stripe_event_id": event.get("id"),
                "stripe_event_type": event.get("type"),
                "stripe_customer_id": obj.get("customer") if isinstance(obj.get("customer"), str) else None,
                "livemode": event.get("livemode"),
                **_properties("subscription" if kind == "subscription" else kind, obj),
            },
            occurred_at=parse_time(event.get("created")),
            idempotency_key=f"stripe:{event.get('id')}",
        )
    ]


SOURCE = dict(
    id="stripe",
    name="Stripe",
    verify=StripeSignature(),
    map=stripe_map,
    delivery_id_path="id",
)
