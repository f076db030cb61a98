from __future__ import annotations

from journeys.context import JourneyContext, JourneyUser
from journeys.definition import define_journey
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.shipped.constants import Events, Templates


@define_journey(
    id="churn-prevention",
    name="Churn — Payment Recovery & Prevention",
    trigger=Events.PAYMENT_FAILED,
    entry_limit="once_per_period",
    entry_period=days(7),
    suppress=hours(4),
    exit_on=[Events.PAYMENT_SUCCEEDED, Events.SUBSCRIPTION_CANCELLED, Events.USER_DELETED],
)
async def churn_prevention(user: JourneyUser, ctx: JourneyContext) -> None:
    """Payment failed: tell them now, remind after a day, give final notice on day three."""
    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.CHURN_PAYMENT_FAILED,
        subject="Your payment didn't go through",
    )
    await ctx.sleep(days(1), label="first-retry")

    if (await ctx.history.has_event(user.id, Events.PAYMENT_SUCCEEDED, within=days(1))).found:
        return
    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.CHURN_PAYMENT_FAILED,
        subject="Reminder: please update your payment method",
        props={"grace_period_days": 2},
    )
    await ctx.sleep(days(2), label="final-notice")

    if not (await ctx.history.has_event(user.id, Events.PAYMENT_SUCCEEDED, within=days(3))).found:
        await send_email(
            to=user.email,
            user_id=user.id,
            template=Templates.CHURN_PAYMENT_FAILED,
            subject="Final notice: your account will be downgraded tomorrow",
            props={"grace_period_days": 1},
        )
