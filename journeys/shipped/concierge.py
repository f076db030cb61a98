from __future__ import annotations

from journeys.context import JourneyContext, JourneyUser
from journeys.definition import define_journey, on
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.shipped.constants import Events, Templates


@define_journey(
    id="concierge-onboarding",
    name="Onboarding — enterprise concierge",
    # Self-serve plans take the automated welcome journey instead.
    trigger=on(Events.USER_SIGNED_UP, where=lambda b: b.prop("plan").eq("enterprise")),
    entry_limit="once",
    suppress=hours(12),
    # A booked meeting puts onboarding in human hands. The awaited csm.contacted must never be
    # here: an exit mid-wait would stop the run before the intro email.
    exit_on=[Events.MEETING_BOOKED],
)
async def concierge_onboarding(user: JourneyUser, ctx: JourneyContext) -> None:
    """Page a CSM, wait for them, re-page after a day, fall back to the automated welcome."""
    seats = int(user.properties.get("seats") or 0)

    # Page a human: a real ingested event that the csm-alert task turns into operator mail.
    await ctx.trigger(
        Events.CSM_ASSIGNMENT_REQUESTED,
        user_id=user.id,
        properties={"plan": "enterprise", "seats": seats, "requested_at": (await ctx.now()).isoformat()},
    )
    await ctx.checkpoint("csm-paged")

    contact = await ctx.wait_for_event(Events.CSM_CONTACTED, timeout=days(1), label="await-csm")
    if contact.timed_out:
        # A fresh requested_at gives the alert a new idempotency key, so the reminder is sent.
        await ctx.trigger(
            Events.CSM_ASSIGNMENT_REQUESTED,
            user_id=user.id,
            properties={
                "plan": "enterprise",
                "seats": seats,
                "requested_at": (await ctx.now()).isoformat(),
                "reminder": True,
            },
        )
        contact = await ctx.wait_for_event(
            Events.CSM_CONTACTED,
            timeout=days(1),
            label="await-csm-2",
            # Covers a csm.contacted that landed between the two waits.
            lookback=hours(1),
        )

    # Unsubscribe does not exit the journey; it gates customer mail (never the CSM page).
    if not await ctx.guard.is_subscribed():
        return

    if contact.timed_out:
        # Two days and no human: the customer never waits on an absent CSM.
        await send_email(
            to=user.email,
            user_id=user.id,
            template=Templates.ONBOARDING_ENTERPRISE_WELCOME,
            subject="Getting your team set up",
        )
        return

    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.ONBOARDING_CONCIERGE_INTRO,
        subject="Next steps for your rollout",
        props={"csm_name": str(contact.properties.get("csm_name") or "your account team")},
    )
