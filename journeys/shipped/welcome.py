from __future__ import annotations

from journeys.context import JourneyContext, JourneyUser
from journeys.definition import define_journey
from journeys.durations import days, hours
from journeys.send import send_email
from journeys.shipped.constants import Events, Templates


@define_journey(
    id="activation-welcome",
    name="Activation — Welcome Series",
    trigger=Events.USER_CREATED,
    entry_limit="once",
    suppress=hours(12),
    exit_on=[Events.USER_DELETED],
)
async def activation_welcome(user: JourneyUser, ctx: JourneyContext) -> None:
    """Welcome a new user, then nudge or celebrate depending on whether they used the key feature."""
    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.ACTIVATION_WELCOME,
        subject="Welcome to Hogsend — let's get you set up",
        props={"first_name": user.properties.get("first_name", "")},
    )
    await ctx.sleep(days(2), label="post-welcome")

    used = await ctx.history.has_event(user.id, Events.FEATURE_USED)
    if used.found:
        await ctx.checkpoint("branch:advanced")
        await send_email(
            to=user.email,
            user_id=user.id,
            template=Templates.ACTIVATION_ADVANCED,
            subject="Nice work — here's what to try next",
        )
    else:
        await ctx.checkpoint("branch:nudge")
        await send_email(
            to=user.email,
            user_id=user.id,
            template=Templates.ACTIVATION_NUDGE,
            subject="You haven't tried the key feature yet",
        )
