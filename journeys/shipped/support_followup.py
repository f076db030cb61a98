"""Support follow-up: the morning after a ticket is resolved, ask whether it fixed the problem.

The question is asked with semantic links (`{% answer_link "fixed" "yes" %}` / `"no"`) and a
hosted answer page for free text (emails/answers.py); the person's answer arrives as an
`email.answered` event, which the journey waits for. A "no" asks the helpdesk to reopen the
ticket (`support.reopen_requested`, which a destination can forward) and pages the support inbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils.dateparse import parse_datetime

from journeys.context import JourneyContext, JourneyUser, db_call
from journeys.definition import define_journey, durable_task
from journeys.durations import days, minutes
from journeys.keys import bounded_key
from journeys.send import send_email, send_operator_email
from journeys.shipped.constants import Events, Questions, Templates
from journeys.shipped.operator_alerts import contact_label, contact_profile_read

ASK_AT_HOUR = 9  # local time, where the ticket says which zone the customer is in; else UTC
ANSWER_TIMEOUT = days(3)


def next_morning(after: datetime, timezone_name: Any = None, *, hour: int = ASK_AT_HOUR) -> datetime:
    """The first `hour`:00 after `after`, in the named IANA zone (UTC if none or unknown)."""
    zone: Any = UTC
    if isinstance(timezone_name, str) and timezone_name:
        try:
            zone = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = UTC
    local = after.astimezone(zone)
    morning = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if morning <= local:
        morning += timedelta(days=1)  # wall-clock arithmetic: 09:00 local across a DST change too
    return morning.astimezone(UTC)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@define_journey(
    id="support-follow-up",
    name="Support — did this fix it?",
    trigger=Events.TICKET_RESOLVED,
    entry_limit="unlimited",
    # The awaited email.answered must never be here; a reopened ticket makes the question moot.
    exit_on=[Events.TICKET_REOPENED, Events.USER_DELETED],
)
async def support_follow_up(user: JourneyUser, ctx: JourneyContext) -> None:
    """Ask "did this fix it?" the morning after; a "no" reopens the ticket and pages support."""
    ticket = {
        "ticket_id": str(user.properties.get("ticket_id") or "")[:200],
        "ticket_subject": str(user.properties.get("subject") or "")[:200],
    }
    now = await ctx.now()
    resolved_at = _moment(user.properties.get("resolved_at")) or now
    morning = next_morning(resolved_at, user.properties.get("timezone"))
    if morning > now:  # a late event whose morning has passed asks at once
        await ctx.sleep_until(morning, label="until-morning")

    if not await ctx.guard.is_subscribed():
        return
    asked = await send_email(
        to=user.email, user_id=user.id, template=Templates.SUPPORT_DID_IT_FIX, props=ticket
    )
    if asked.status not in ("sent", "queued"):
        return  # suppressed or undeliverable: nobody can answer it

    # Only an answer to this very email counts (a contact may have several tickets over time).
    answer = await ctx.wait_for_event(
        Events.EMAIL_ANSWERED,
        timeout=ANSWER_TIMEOUT,
        label="await-answer",
        where=lambda b: [b.prop("email_id").eq(asked.email_id), b.prop("question").eq(Questions.FIXED)],
    )
    if answer.timed_out:
        return
    if answer.properties.get("answer") == "yes":
        await ctx.checkpoint("fixed")
        return

    text = str(answer.properties.get("text") or "")
    await ctx.trigger(Events.SUPPORT_REOPEN_REQUESTED, user_id=user.id, properties={**ticket, "text": text})
    await send_email(
        to=user.email, user_id=user.id, template=Templates.SUPPORT_REOPENED, props={**ticket, "text": text}
    )


@durable_task(
    name="support-reopen-alert", on_events=[Events.SUPPORT_REOPEN_REQUESTED], retries=2, timeout=minutes(15)
)
async def support_reopen_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """Page the support inbox: the customer says the fix did not work, in their own words."""
    user_id, event_id = payload.get("user_id") or "", payload.get("event_id") or ""
    if not user_id or not event_id:
        return {"status": "skipped", "reason": "missing_user_or_event_id"}
    props = payload.get("properties") or {}
    profile = await db_call(contact_profile_read, user_id=user_id)
    ticket_id = str(props.get("ticket_id") or "")
    result = await send_operator_email(
        to=settings.SUPPORT_ALERT_EMAIL,
        template=Templates.TRANSACTIONAL_SUPPORT_REOPEN_ALERT,
        subject=f"[Support] not fixed: ticket {ticket_id or '(no id)'} for {contact_label(profile)}",
        props={
            "contact": profile,
            "ticket_id": ticket_id,
            "ticket_subject": str(props.get("ticket_subject") or ""),
            "text": str(props.get("text") or ""),
        },
        # One page per reopen request: a retry of this delivery finds the first send.
        idempotency_key=bounded_key("support-reopen-alert", event_id),
    )
    return {"status": result.status}
