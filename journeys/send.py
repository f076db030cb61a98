"""`send_email`: what journeys and tasks call. Inside a journey it is a recorded, replay-safe step.

This is the one place a journey's send crosses into the emails app: it passes the run, its
journey's category, suppress window and cap choices (priority, on_cap), and a key derived from the
run's step to `emails.services.email_send`, which renders, checks consent, applies the send-time
policy and delivers without knowing what a run is (it asks the liveness seam this app installs,
`emails.liveness`).

A send the policy holds (quiet hours, a deferred cap) makes the journey wait for it: a durable
sleep until its `held_until`, then a recorded release step that delivers it if its release task
has not yet (one claim decides, so it goes out once). A moment that moved later meanwhile (a
higher-priority send took the slot) is waited for again. Then the journey goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils.dateparse import parse_datetime

from contacts.categories import TRANSACTIONAL
from emails.models import EmailLog
from emails.services import email_held_release, email_send
from journeys.context import JourneyContext, current_context, db_call
from journeys.durations import journey_time
from journeys.models import JourneyRun, RunStep
from journeys.services import RunNotLive

# How often a journey waits again for a held send whose moment moved later (each time a
# higher-priority send took its slot); past that it goes on and the release task sends it.
HELD_WAITS = 5


@dataclass(frozen=True)
class SendResult:
    email_id: str
    status: str
    reason: str = ""
    held_until: str | None = None


def _result(log: Any) -> dict[str, Any]:
    result = {"email_id": str(log.id), "status": log.status, "reason": log.status_reason}
    if log.status == EmailLog.Status.HELD and log.held_until is not None:
        result["held_until"] = log.held_until.isoformat()
    return result


async def send_email(
    *,
    to: str,
    template: str,
    user_id: str | None = None,
    subject: str | None = None,
    journey_name: str | None = None,
    props: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    journey_state_id: str | None = None,
) -> SendResult:
    """Send a journey email. Consent and the journey's suppress window are checked for you.

    Inside a journey the idempotency key defaults to the run and step, so a replay never sends
    twice; outside one, pass `idempotency_key`. A contact with no address (`to` empty) is not an
    error: the send is recorded as skipped (`no_email_address`) and the journey goes on.
    """
    ctx = current_context.get()
    if ctx is None:
        if not idempotency_key:
            raise ValueError("send_email outside a journey needs an idempotency_key")
        log = await db_call(
            email_send,
            to=to,
            template=template,
            subject=subject,
            props=props,
            user_id=user_id,
            idempotency_key=idempotency_key,
        )
        return SendResult(**_result(log))

    def send(seq: int) -> Any:
        return email_send(
            to=to,
            template=template,
            subject=subject,
            props=props,
            user_id=user_id or ctx.user.id,
            category=ctx.journey.category,
            run_id=ctx.run_id,
            journey_id=ctx.journey.id,
            suppress_seconds=journey_time(ctx.journey.suppress).total_seconds(),
            idempotency_key=idempotency_key or f"journey-run:{ctx.run_id}:{seq}",
            held_out=ctx.held_out,
            control_group=ctx.control_group,
            priority=ctx.journey.priority,
            on_cap=ctx.journey.on_cap,
            # A backend that stops sends short of the provider (the backtest's) delivers none.
            deliver=getattr(ctx.backend, "delivers_email", True),
        )

    # The send and its record are one unit of database work: one hop to a database thread.
    result = await ctx.db_step(RunStep.Kind.SEND, template, send, encode=_result)
    if result["status"] == EmailLog.Status.HELD:
        result = await _wait_for_held(ctx, template, result)
    return SendResult(**result)


def _held_until(result: dict[str, Any]) -> datetime | None:
    return parse_datetime(result["held_until"]) if result.get("held_until") else None


async def _wait_for_held(ctx: JourneyContext, template: str, result: dict[str, Any]) -> dict[str, Any]:
    """Sleep until the held send's moment, then release it (a recorded step; replay-safe)."""
    email_id = result["email_id"]

    async def release(seq: int) -> Any:
        return await ctx.backend.db(email_held_release, email_id=email_id)

    for _ in range(HELD_WAITS):
        until = _held_until(result)
        if result["status"] != EmailLog.Status.HELD or until is None:
            break
        await ctx.sleep_until(until, label=f"held:{template}")
        result = await ctx.step(RunStep.Kind.SEND, f"released:{template}", release, encode=_result)
    return result


async def send_operator_email(
    *, to: str | None = None, template: str, subject: str | None, props: dict[str, Any], idempotency_key: str
) -> SendResult:
    """Operator mail (the CSM page): transactional, never gated by a contact's preferences."""
    log = await db_call(
        email_send,
        to=to or settings.CSM_ALERT_EMAIL,
        template=template,
        subject=subject,
        props=props,
        category=TRANSACTIONAL,
        skip_preference_check=True,
        idempotency_key=idempotency_key,
    )
    return SendResult(**_result(log))


class JourneyRunLiveness:
    """The liveness seam's answer (installed by `journeys.apps`): a run may send while it is live."""

    def hold_sql(self) -> str | None:
        return f"SELECT status FROM {JourneyRun._meta.db_table} WHERE id = %(run_id)s FOR UPDATE"

    def held(self, *, run_id: UUID, status: str | None) -> None:
        if status not in JourneyRun.LIVE_STATUSES:
            raise RunNotLive(run_id, status or "gone")

    def refusal(self, *, run_id: UUID) -> str | None:
        status = JourneyRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return None if status in JourneyRun.LIVE_STATUSES else f"run_not_live:{status or 'gone'}"
