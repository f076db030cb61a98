from __future__ import annotations

from journeys.context import JourneyContext, JourneyUser
from journeys.definition import Goal, define_journey
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.shipped.constants import Events, Templates


@define_journey(
    id="conversion-abandoned-checkout",
    name="Conversion — Abandoned Checkout",
    trigger=Events.CHECKOUT_ABANDONED,
    entry_limit="once_per_period",
    entry_period=days(7),
    suppress=hours(4),
    exit_on=[Events.CHECKOUT_COMPLETED, Events.USER_DELETED],
    # Its readout counts who completed the checkout within a week (the exit ends the run; the
    # conversion is still counted).
    goal=Goal(Events.CHECKOUT_COMPLETED, within=days(7)),
)
async def abandoned_checkout(user: JourneyUser, ctx: JourneyContext) -> None:
    """A nudge now; a discount tomorrow if they still have not come back."""
    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.CONVERSION_WINBACK_OFFER,
        subject="You left something behind",
    )
    await ctx.sleep(days(1), label="day-1-followup")

    if not (await ctx.history.has_event(user.id, Events.CHECKOUT_COMPLETED, within=days(1))).found:
        await send_email(
            to=user.email,
            user_id=user.id,
            template=Templates.CONVERSION_WINBACK_OFFER,
            subject="Still interested? Here's 10% off",
            props={"discount_percent": 10},
        )
