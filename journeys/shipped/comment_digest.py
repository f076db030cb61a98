"""Comment digest: the comments on a contact's work over an hour, in one email.

The first `comment.created` for a contact opens a digest and starts the run; the ones that arrive
in the next hour are collected into it at ingest and start nothing; when the hour is up the run
gets them all and sends one email. A comment after that opens the next digest.
"""

from __future__ import annotations

from journeys.context import JourneyContext, JourneyUser
from journeys.definition import Digest, define_journey
from journeys.durations import hours
from journeys.send import send_email
from journeys.shipped.constants import Events, Templates


@define_journey(
    id="comment-digest",
    name="Comments — hourly digest",
    trigger=Events.COMMENT_CREATED,
    entry_limit="unlimited",
    digest=Digest("comments", window=hours(1)),
    exit_on=[Events.USER_DELETED],
)
async def comment_digest(user: JourneyUser, ctx: JourneyContext) -> None:
    """Collect an hour of comments, then send them in one email."""
    digest = await ctx.digest("comments", window=hours(1))
    await send_email(
        to=user.email,
        user_id=user.id,
        template=Templates.COMMENTS_DIGEST,
        props={
            "comments": digest.properties(),
            "count": digest.count,
            "more": digest.count - len(digest.items),  # beyond the digest's max_items
        },
    )
