"""Human approval gate: a sensitive send waits for a person's sign-off, and fails safe without it.

A proposed custom offer (a discount above what support may give alone) pages an approver through
the `approval-alert` task, then parks on `approval.granted`. Granted: the approved offer goes out.
Two days of silence: the pre-approved standard offer goes out instead, never the unapproved one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from journeys.context import JourneyContext, JourneyUser, db_call
from journeys.definition import define_journey, durable_task, on
from journeys.durations import days, minutes
from journeys.keys import bounded_key
from journeys.send import send_email, send_operator_email
from journeys.shipped.constants import Events, Templates
from journeys.shipped.operator_alerts import contact_label, contact_profile_read

# What anyone may offer without asking: the fallback never exceeds it.
PRE_APPROVED_PERCENT = 10
APPROVAL_TIMEOUT = days(2)


def _percent(value: Any) -> float | None:
    """A discount in (0, 100], or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if 0 < value <= 100 else None


def _shown(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@define_journey(
    id="approval-gate",
    name="Retention offer — human approval gate",
    # Only a real discount needs a sign-off; anything else is skipped as trigger_conditions_not_met.
    trigger=on(
        Events.OFFER_PROPOSED,
        where=lambda b: [b.prop("discount_percent").gt(0), b.prop("discount_percent").lte(100)],
    ),
    entry_limit="once_per_period",
    entry_period=days(30),
    # The awaited approval.granted must never be here: an exit mid-wait would drop the approved send.
    exit_on=[Events.SUBSCRIPTION_CANCELLED, Events.USER_DELETED],
)
async def approval_gate(user: JourneyUser, ctx: JourneyContext) -> None:
    """Ask an approver, hold the custom offer for their sign-off, fall back to the standard offer."""
    proposed = _percent(user.properties.get("discount_percent")) or PRE_APPROVED_PERCENT
    await ctx.trigger(
        Events.APPROVAL_REQUESTED,
        user_id=user.id,
        properties={
            "action": "custom-offer",
            "discount_percent": _shown(proposed),
            "reason": str(user.properties.get("reason") or "")[:500],
            "requested_at": (await ctx.now()).isoformat(),
        },
    )
    await ctx.checkpoint("approval-requested")

    decision = await ctx.wait_for_event(
        Events.APPROVAL_GRANTED, timeout=APPROVAL_TIMEOUT, label="await-approval"
    )

    # Unsubscribe does not exit the run; it gates the customer's mail (never the approver's page).
    if not await ctx.guard.is_subscribed():
        return
    if decision.timed_out:
        # Fail safe: nobody approved, so only what needs no approval goes out.
        await send_email(
            to=user.email,
            user_id=user.id,
            template=Templates.OFFER_STANDARD,
            props={"discount_percent": _shown(min(proposed, PRE_APPROVED_PERCENT))},
        )
        return
    # An approver may lower the discount with the grant, never raise it past the proposal.
    granted = _percent(decision.properties.get("discount_percent"))
    approved = min(granted, proposed) if granted is not None else proposed
    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.OFFER_APPROVED,
        subject=f"{_shown(approved)}% off, just for you",
        props={
            "discount_percent": _shown(approved),
            "approved_by": str(decision.properties.get("approved_by") or "")[:200],
        },
    )


@durable_task(name="approval-alert", on_events=[Events.APPROVAL_REQUESTED], retries=2, timeout=minutes(15))
async def approval_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """Page the approver: who the customer is (from the contacts table) and what needs a sign-off."""
    user_id = payload.get("user_id") or ""
    if not user_id:
        return {"status": "skipped", "reason": "missing_user_id"}
    props = payload.get("properties") or {}
    requested_at = str(props.get("requested_at") or payload.get("occurred_at") or "")
    profile = await db_call(contact_profile_read, user_id=user_id)
    result = await send_operator_email(
        to=settings.APPROVAL_ALERT_EMAIL,
        template=Templates.TRANSACTIONAL_APPROVAL_ALERT,
        subject=f"[Approval needed] {props.get('discount_percent')}% offer for {contact_label(profile)}",
        props={
            "contact": profile,
            "action": str(props.get("action") or ""),
            "discount_percent": props.get("discount_percent"),
            "reason": str(props.get("reason") or ""),
            "requested_at": requested_at,
            "timeout_days": _shown(APPROVAL_TIMEOUT.seconds / 86400),
            "api_url": settings.PUBLIC_BASE_URL,
        },
        # A retry of the same request does not page twice; a new request (a new moment) does.
        idempotency_key=bounded_key("approval-alert", user_id, requested_at),
    )
    return {"status": result.status}
