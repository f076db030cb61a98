"""Broadcasts on the virtual-time harness: the real tick and drains, run at the harness's clock.

```
PRO = define_segment("pro", name="On the Pro plan", where=lambda b: b.prop("plan").eq("pro"))

def test_the_sale_reaches_each_member_at_ten_their_time(journey_harness):
    with segments_defined(PRO):
        journey_harness.emit("plan.chosen", user_id="ada", email="ada@example.com",
                             contact_properties={"plan": "pro", "timezone": "Europe/Berlin"})
        broadcast = broadcast_create(name="Sale", template="broadcasts/announcement",
                                     props={"headline": "Sale"}, segment_id="pro",
                                     local_time="10:00", local_date="2026-01-06")
        sent = BroadcastDriver(journey_harness).send(broadcast)
    assert [e.sent_at for e in sent.emails] == [datetime(2026, 1, 6, 9, tzinfo=UTC)]
    assert sent.policy_breaches() == []
```

`send` plays the beat and the workers: it runs `broadcasts.ticks.broadcasts_tick` and
`broadcasts.send.batch_drain` at the harness's moment, and moves the harness's clock to the next
moment anything is due — the broadcast's `send_at`, a recipient's local-time `due_at`, the next
slot of its pace, a stalled drain's rescue — until it has finished and none of its sends is held
any more. The harness releases held sends (quiet hours, deferred caps) and wakes journeys on the
way, so a journey's send and a broadcast's share the caps as they do in production. Nothing runs on
Celery and nothing sleeps for real.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Max, Min, Q

from audiences.segments import Segment, registry
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.selectors import Progress, broadcast_progress
from broadcasts.send import DrainResult, batch_drain, idempotency_key
from broadcasts.ticks import broadcasts_tick
from emails.models import EmailLog
from journeys.invariants import cap_breaches, quiet_hours_breaches
from journeys.testing import JourneyHarness

Status = Broadcast.Status
State = BroadcastRecipient.State
FINISHED = (Status.COMPLETED, Status.CANCELLED)


@dataclass
class BroadcastSent:
    """What a broadcast did on the harness: its row, its recipients' outcomes and its emails."""

    broadcast: Broadcast
    drains: list[DrainResult]

    @property
    def emails(self) -> list[EmailLog]:
        """The broadcast's emails, in the order they went out (held or unsent ones last)."""
        return sorted(
            _emails_of(self.broadcast.pk).select_related("contact"),
            key=lambda e: (e.sent_at is None, e.sent_at or e.created_at, e.to_email),
        )

    @property
    def recipients(self) -> list[BroadcastRecipient]:
        return list(
            BroadcastRecipient.objects.filter(broadcast=self.broadcast)
            .select_related("contact")
            .order_by("id")
        )

    def outcomes(self) -> dict[str, tuple[str, str]]:
        """Each recipient's (outcome, reason), by email address."""
        return {r.contact.email: (r.outcome, r.reason) for r in self.recipients}

    def progress(self) -> Progress:
        return broadcast_progress(broadcast=self.broadcast)

    def policy_breaches(self) -> list[str]:
        """`journeys.invariants`' "no cap exceeded" and "no send inside quiet hours", over every
        email the harness's database holds (a journey's sends count against a broadcast's caps)."""
        emails = list(EmailLog.objects.select_related("contact"))
        return cap_breaches(emails) + quiet_hours_breaches(emails)


class BroadcastDriver:
    """Runs broadcasts to the end on a `JourneyHarness`'s clock. See the module's docstring."""

    def __init__(self, harness: JourneyHarness, *, batch_size: int | None = None) -> None:
        self.harness = harness
        self.batch_size = batch_size

    def send(self, broadcast: Broadcast | UUID, *, within: timedelta = timedelta(days=400)) -> BroadcastSent:
        """Tick, drain and move the clock until the broadcast has finished and none of its sends is
        held; raises `TimeoutError` if that takes longer than `within` of virtual time (a paused
        broadcast, or one scheduled beyond it)."""
        broadcast_id = broadcast.pk if isinstance(broadcast, Broadcast) else broadcast
        give_up = self.harness.now() + within
        drains: list[DrainResult] = []
        beats_now = 0  # beats without the clock moving: a bound, so a stuck broadcast fails loudly
        while True:
            drains += self.tick()
            current = Broadcast.objects.get(pk=broadcast_id)
            upcoming = self._next_moment(current)
            if upcoming is None:
                return BroadcastSent(broadcast=current, drains=drains)
            if upcoming > give_up:
                raise TimeoutError(
                    f"broadcast {current.name!r} is {current.status} at {self.harness.now():%Y-%m-%d %H:%M}; "
                    f"nothing lets it finish before {give_up:%Y-%m-%d %H:%M}"
                )
            beats_now = beats_now + 1 if upcoming <= self.harness.now() else 0
            if beats_now > 100:
                raise RuntimeError(f"broadcast {current.name!r} makes no progress at {self.harness.now()}")
            self.harness.advance(max(upcoming - self.harness.now(), timedelta(0)))

    def tick(self) -> list[DrainResult]:
        """One beat at the harness's moment: the real tick, then a drain of each broadcast it hands
        on, each drained until it has nothing due (its pace kept on the virtual clock)."""
        drains = []
        for broadcast_id in broadcasts_tick(now=self.harness.now()).to_drain:
            result = DrainResult()
            while batch_drain(
                broadcast_id=broadcast_id,
                result=result,
                batch_size=self.batch_size,
                now=self.harness.now,
                wait=lambda seconds: self.harness.advance(timedelta(seconds=seconds)),
            ):
                pass
            drains.append(result)
        return drains

    def _next_moment(self, broadcast: Broadcast) -> datetime | None:
        """When something next happens to the broadcast: None once it is over."""
        now = self.harness.now()
        held = (
            _emails_of(broadcast.pk).filter(status=EmailLog.Status.HELD).aggregate(at=Max("held_until"))["at"]
        )
        if broadcast.status in FINISHED:
            return held  # the harness releases its held sends on the way there
        if broadcast.status == Status.SCHEDULED:
            return broadcast.send_at or now
        if broadcast.status != Status.RUNNING:  # paused: nothing moves it but a resume
            return now + timedelta(days=100_000)
        todo = BroadcastRecipient.objects.filter(
            broadcast=broadcast, state__in=[State.PENDING, State.CLAIMED]
        )
        if not todo.exists():
            return now  # the tick completes it
        due = todo.filter(state=State.PENDING).filter(Q(due_at__isnull=True) | Q(due_at__lte=now))
        if due.exists():
            # Due but handed to no drain (one drained it lately): the tick's stall rescue.
            drained = broadcast.drained_at or now
            return max(drained + timedelta(seconds=settings.BROADCAST_STALL_SECONDS), now)
        moments = todo.aggregate(due=Min("due_at", filter=Q(state=State.PENDING)), claimed=Min("claimed_at"))
        if moments["claimed"] is not None:  # a claim left behind: the tick returns it after the timeout
            return max(moments["claimed"] + timedelta(seconds=settings.BROADCAST_CLAIM_TIMEOUT_SECONDS), now)
        return moments["due"]


def _emails_of(broadcast_id: UUID):
    return EmailLog.objects.filter(idempotency_key__startswith=idempotency_key(broadcast_id, ""))


@contextmanager
def segments_defined(*segments: Segment) -> Generator[None, None, None]:
    """These segments defined for the block (a project's come from HOGSEND_SEGMENT_MODULES)."""
    registry.register(*segments)
    try:
        yield
    finally:
        for segment in segments:
            registry.unregister(segment.id)
