"""Journeys that exist only for the end-to-end tests (loaded by the test worker)."""

from __future__ import annotations

from journeys.definition import Digest, Goal, define_journey
from journeys.durations import days
from journeys.send import send_email


def _fanout(journey_id: str):
    @define_journey(id=journey_id, name=f"E2E {journey_id}", trigger="e2e.fanout", entry_limit="unlimited")
    async def fanout(user, ctx):
        await ctx.checkpoint("entered")
        await ctx.sleep(days(1), label="nap")
        await send_email(to=user.email, user_id=user.id, template="activation/nudge", subject=journey_id)

    return fanout


@define_journey(id="e2e-await", name="E2E wait for an answer", trigger="e2e.ask", entry_limit="unlimited")
async def await_answer(user, ctx):
    answer = await ctx.wait_for_event("e2e.answer", timeout=days(2), label="awaiting-answer")
    await send_email(
        to=user.email,
        user_id=user.id,
        template="activation/nudge",
        subject="timed out" if answer.timed_out else f"answered {answer.properties.get('n')}",
    )


@define_journey(id="e2e-park", name="E2E park, then send", trigger="e2e.park", entry_limit="unlimited")
async def park(user, ctx):
    await ctx.sleep(days(12), label="parked")
    await send_email(to=user.email, user_id=user.id, template="activation/nudge", subject="after the park")


@define_journey(
    id="e2e-digest",
    name="E2E digest of comments",
    trigger="e2e.comment",
    entry_limit="unlimited",
    digest=Digest("comments", window=days(5)),  # ten seconds at the e2e time scale
)
async def digest_comments(user, ctx):
    digest = await ctx.digest("comments")
    await send_email(
        to=user.email,
        user_id=user.id,
        template="comments/digest",
        props={"comments": digest.properties(), "count": digest.count, "more": 0},
    )


@define_journey(
    id="e2e-quiet",
    name="E2E a send held for quiet hours",
    trigger="e2e.quiet",
    entry_limit="unlimited",
    category="product-updates",
)
async def quiet(user, ctx):
    sent = await send_email(
        to=user.email, user_id=user.id, template="activation/nudge", subject="after the quiet"
    )
    await ctx.checkpoint(f"send-{sent.status}")


@define_journey(
    id="e2e-experiment",
    name="E2E variant and holdout",
    trigger="e2e.experiment",
    holdout=0.5,
    goal=Goal("e2e.converted", within=days(7)),
)
async def experiment(user, ctx):
    arm = await ctx.variant("subject", ["plain", "bold"])
    await ctx.sleep(days(1), label="before-send")  # the run is evicted and replayed here on a long wait
    again = await ctx.variant("subject", ["plain", "bold"], weights=[1, 0] if arm == "bold" else [0, 1])
    await send_email(
        to=user.email, user_id=user.id, template="activation/nudge", subject=f"arm {arm} {again}"
    )


JOURNEYS = [
    _fanout("e2e-fanout-a"),
    _fanout("e2e-fanout-b"),
    _fanout("e2e-fanout-c"),
    await_answer,
    park,
    digest_comments,
    quiet,
    experiment,
]


def _slow_wait_registration() -> None:
    """Widen both race windows for contacts named `slowreg-*`: the wait has begun (its start is
    recorded) but the relay does not know of it for two seconds; then the relay knows of it (and
    pushes what it re-armed) two seconds before the engine's wait exists. Loaded only by e2e workers."""
    import time

    from contacts import outbox
    from contacts.models import Contact

    register = outbox.awaited_event_register

    def slow(**kwargs):
        widen = Contact.objects.filter(pk=kwargs["contact_id"], user_id__startswith="slowreg-").exists()
        if widen:
            time.sleep(2)
        rearmed = register(**kwargs)
        if widen:
            time.sleep(2)
        return rearmed

    outbox.awaited_event_register = slow


_slow_wait_registration()
