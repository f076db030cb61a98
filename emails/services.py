"""The send pipeline: consent, suppress window, idempotency; then delivery (emails.delivery) and retry.

It knows contacts, never runs: a run's id is passed through, and whether that run may still send
is the liveness seam's answer (`emails.liveness`). Suppressions are consent, at the ground
(`contacts.suppressions`); provider-reported outcomes are emails/webhooks.py (bounces and
complaints) and emails/tracking.py (opens and clicks).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from contacts.addresses import EmailError
from contacts.categories import CONFIRMATION, TRANSACTIONAL, UnknownCategory, category_get
from contacts.models import Contact
from contacts.prepared import prepared_cursor
from contacts.rows import unsaved
from emails.control_group import send_hold_reason
from emails.delivery import (
    EmailDeliveryDeferred,
    choices_block,
    email_deliver,
    email_release,
    email_transmit,
)
from emails.liveness import liveness
from emails.models import EmailLog
from emails.policy import (
    CAPPED_REASON,
    QUEUE,
    PolicyDecision,
    PolicyError,
    on_cap_check,
    send_policy_decide,
)
from emails.registry import CONFIRMATION_TEMPLATE, get_template
from emails.status import Status, email_status_advance
from emails.tasks import email_deliver_task, email_release_task

logger = logging.getLogger(__name__)


def email_send(
    *,
    to: str,
    template: str,
    idempotency_key: str,
    subject: str | None = None,
    props: dict[str, Any] | None = None,
    category: str | None = None,
    user_id: str | None = None,
    run_id: UUID | None = None,
    journey_id: str | None = None,
    suppress_seconds: float = 0,
    skip_preference_check: bool = False,
    deliver: bool = True,
    held_out: bool = False,
    control_group: bool | None = None,
    priority: int = 0,
    on_cap: str = "skip",
) -> EmailLog:
    """Send one email at most once per idempotency key, and record what happened.

    Call it outside a transaction: it commits the queued row itself and then talks to the
    provider. A caller that must write the row in its own transaction passes `deliver=False`
    and calls `email_deliver` after its commit.

    1. One statement reads what the send decides on (`_send_facts`). A key already in the log
       returns that row, delivering it first if it is still queued (the process that wrote it
       died before its provider call).
    2. In one transaction: lock the run (if any, through the liveness seam) and refuse one that
       may no longer send; no address → skipped (`no_email_address`); check consent (suppression,
       unsubscribe, category choice) unless this is operator mail that skips it; hold the send if
       the journey's suppress window has not passed; apply the send-time policy (emails.policy:
       quiet hours hold it, a frequency cap skips or defers it — `on_cap` — under a lock per
       contact and category, `priority` deciding who keeps a contested slot); insert the row,
       queued, held, skipped or suppressed. The run lock orders the row before any exit: an exit
       that commits later finds the email queued.
    3. After commit, email_transmit: claim, provider call, record. A transient failure leaves the
       row queued and the Celery task `emails.email_deliver` retries it with backoff. A held row
       is handed to `emails.email_release` with its `held_until` as the eta.
    """
    props = props or {}
    spec, category = _send_checked(
        template=template, category=category, operator=skip_preference_check, on_cap=on_cap
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            facts = _send_facts(
                idempotency_key=idempotency_key,
                to=to,
                user_id=user_id,
                run_id=run_id,
                journey_id=journey_id if suppress_seconds > 0 else None,
                window_start=now - timezone.timedelta(seconds=suppress_seconds),
            )
            if facts.existing_id is not None:
                existing = EmailLog.objects.get(pk=facts.existing_id)
            else:
                existing = None
                if run_id is not None:
                    liveness().held(run_id=run_id, status=facts.run_status)
                contact = facts.contact
                status, block, decision = _send_decide(
                    to=to,
                    facts=facts,
                    category=category,
                    operator=skip_preference_check,
                    held_out=held_out,
                    control_group=control_group,
                    now=now,
                    priority=priority,
                    on_cap=on_cap,
                )
                log = unsaved(
                    EmailLog,
                    idempotency_key=idempotency_key,
                    to_email=to or "",
                    contact_id=contact.pk if contact is not None else None,
                    run_id=run_id,
                    template=template,
                    subject=subject or spec.subject,
                    category=category,
                    props=props,
                    status=status,
                    status_reason=block or "",
                    held_until=decision.held_until,
                    priority=priority,
                    on_cap=on_cap,
                    operator_mail=skip_preference_check,
                    created_at=now,
                )
                EmailLog.contact.field.set_cached_value(log, contact)  # as `contact=` would have
                _log_insert(log)
                if decision.bumped:
                    _bumped_apply(decision.bumped)
                # email.queued / .suppressed / .skipped for destinations (rows only, sent after commit)
                from contacts.lifecycle import email_emit

                email_emit(email_id=log.pk, status=log.status)
    except IntegrityError:
        # The same key committed by a concurrent send: theirs is the one.
        existing = EmailLog.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    if existing is not None:
        return _resume(existing, deliver=deliver)
    if log.status == Status.HELD:
        _release_after_commit(str(log.pk), log.held_until)
    if log.status != Status.QUEUED or not deliver:
        return log
    log.contact = contact
    try:
        return email_transmit(log=log)
    except EmailDeliveryDeferred:
        _enqueue_retry(str(log.pk))
        return log


def _send_checked(*, template: str, category: str | None, operator: bool, on_cap: str) -> tuple[Any, str]:
    """The send's template spec and category, or an EmailError saying what the caller got wrong."""
    spec = get_template(template)
    category = category or spec.category
    try:
        category_get(category)
    except UnknownCategory as error:
        raise EmailError(str(error)) from None
    if (category == CONFIRMATION) != (template == CONFIRMATION_TEMPLATE):
        raise EmailError(f"only the {CONFIRMATION_TEMPLATE!r} template is sent as {CONFIRMATION!r} mail")
    if operator and category != TRANSACTIONAL:
        raise EmailError("only transactional (operator) mail may skip the preference check")
    try:
        on_cap_check(on_cap)
    except PolicyError as error:
        raise EmailError(str(error)) from None
    return spec, category


def _send_decide(
    *,
    to: str,
    facts: _SendFacts,
    category: str,
    operator: bool,
    held_out: bool,
    control_group: bool | None = None,
    now: Any,
    priority: int,
    on_cap: str,
) -> tuple[str, str | None, PolicyDecision]:
    """What becomes of a send with no row yet: (status, reason, policy decision). Inside the
    transaction that inserts its row (a frequency cap's lock lasts until that commit)."""
    contact = facts.contact
    hold = (
        None
        if operator
        else send_hold_reason(
            contact=contact, category=category, held_out=held_out, control_group=control_group
        )
    )
    block, status = (
        (hold, Status.SKIPPED) if hold else _block(to=to, facts=facts, category=category, operator=operator)
    )
    decision = QUEUE
    if status == Status.QUEUED:
        decision = send_policy_decide(
            category=category, contact=contact, to=to, now=now, priority=priority, on_cap=on_cap
        )
        status, block = decision.status, decision.reason or None
    return status, block, decision


@dataclass(frozen=True)
class _SendFacts:
    """Everything a send decides on, read in one statement (`_SEND_FACTS_SQL`)."""

    existing_id: UUID | None
    run_status: str | None
    suppression: str | None
    recent_in_window: bool
    contact: Contact | None


_CONTACT_COLUMNS = [f.column for f in Contact._meta.concrete_fields]
_CONTACT_FIELDS = [f.attname for f in Contact._meta.concrete_fields]

# The idempotency key's row, the run's status (locked, through the liveness seam), the address's
# suppression, whether the journey sent this contact anything inside its suppress window, and the
# contact: one round trip where the send used to take five.
_SEND_FACTS_SQL = """
WITH run AS ({run_sql})
SELECT (SELECT l.id FROM emails_emaillog l WHERE l.idempotency_key = %(key)s),
       (SELECT status FROM run),
       (SELECT s.reason FROM contacts_suppression s WHERE UPPER(s.email::text) = UPPER(%(to)s) LIMIT 1),
       (%(journey)s::text IS NOT NULL AND c.id IS NOT NULL AND EXISTS (
            SELECT 1 FROM emails_emaillog l JOIN journeys_journeyrun r ON r.id = l.run_id
            WHERE l.contact_id = c.id AND r.journey_id = %(journey)s AND l.sent_at > %(since)s)),
       {contact_columns}
FROM (SELECT 1) AS one LEFT JOIN contacts_contact c ON c.user_id = %(user_id)s
"""
_NO_RUN_SQL = "SELECT NULL::text AS status WHERE false"


def _send_facts(
    *,
    idempotency_key: str,
    to: str,
    user_id: str | None,
    run_id: UUID | None,
    journey_id: str | None,
    window_start: Any,
) -> _SendFacts:
    run_sql = (liveness().hold_sql() if run_id is not None else None) or _NO_RUN_SQL
    query = _SEND_FACTS_SQL.format(
        run_sql=run_sql, contact_columns=", ".join(f"c.{column}" for column in _CONTACT_COLUMNS)
    )
    params = {
        "key": idempotency_key,
        "run_id": run_id,
        "to": to or "",
        "journey": journey_id,
        "since": window_start,
        "user_id": user_id or "",
    }
    with prepared_cursor() as cursor:
        cursor.execute(query, params)
        existing_id, run_status, suppression, recent, *contact_row = cursor.fetchone()
    contact = None
    if user_id and contact_row[0] is not None:
        contact = Contact.from_db(connection.alias, _CONTACT_FIELDS, _decoded(contact_row))
    return _SendFacts(
        existing_id=existing_id,
        run_status=run_status,
        suppression=suppression,
        recent_in_window=bool(recent),
        contact=contact,
    )


_LOG_FIELDS = EmailLog._meta.concrete_fields
_LOG_INSERT_SQL = "INSERT INTO emails_emaillog ({}) VALUES ({})".format(
    ", ".join(field.column for field in _LOG_FIELDS),
    ", ".join(f"%({field.attname})s" for field in _LOG_FIELDS),
)


# The fields whose conversion for the database is only their Python type's (text, flags; the
# backend types integers by their column's size, so they keep theirs): their values are taken as
# they are; the others (JSON, UUIDs, times, keys, integers) go through the field's own conversion,
# as in `save`. Converting the row's thirty values field by field cost a send's worker as much CPU
# as the statement's own adaptation.
_PLAIN_FIELDS = {
    models.CharField: str,
    models.EmailField: str,
    models.TextField: str,
    models.BooleanField: bool,
}
_LOG_PLAIN = [(field, _PLAIN_FIELDS.get(type(field))) for field in _LOG_FIELDS]


def _log_params(log: EmailLog) -> dict[str, Any]:
    """The row's values as `save` would send them (a choice as its plain value)."""
    params: dict[str, Any] = {}
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the proxy: each field's conversion reads it
    for field, plain in _LOG_PLAIN:
        if plain is not None:
            value = getattr(log, field.attname)
            params[field.attname] = value if value is None or type(value) is plain else plain(value)
            continue
        value = field.get_db_prep_save(field.pre_save(log, add=True), wrapper)
        params[field.attname] = str(value) if isinstance(value, str) else value  # a choice as its value
    return params


def _log_insert(log: EmailLog) -> None:
    """Insert a single send's row as one prepared statement (every journey send writes one; built
    through the ORM's `create` it cost the worker more than the database spent on it). EmailLog
    has no save signals to send."""
    params = _log_params(log)
    with prepared_cursor() as cursor:
        cursor.execute(_LOG_INSERT_SQL, params)
    log._state.adding, log._state.db = False, connection.alias


@dataclass(frozen=True)
class BatchRecipient:
    """One recipient of a batch send: the contact's user id, the address, the send's key."""

    user_id: str
    to: str
    idempotency_key: str


def email_send_batch(
    *,
    recipients: Sequence[BatchRecipient],
    template: str,
    props: dict[str, Any],
    category: str | None = None,
    priority: int = 0,
    on_cap: str = "skip",
) -> list[EmailLog]:
    """`email_send(..., deliver=False)` for many recipients of one template and props (a broadcast's
    batch): one row per recipient, in the order given, each decided by the rules of a single send.

    Call it inside the caller's transaction; it delivers nothing (the caller hands the queued rows
    to `emails.batch.emails_deliver_batch` after its commit).

    1. Template, category and on_cap are checked once: an EmailError is the whole batch's.
    2. Three statements read what every send decides on: the rows already under their keys (a
       repeat returns its row, as email_send does), their addresses' suppressions, their contacts.
    3. Each recipient without a row is decided by `_send_decide`, as a single send is: control
       group, consent, then the send-time policy (a category with quiet hours needs no statement;
       one with frequency caps takes its lock and reads its slots per recipient, as email_send does).
    4. One INSERT of the new rows; a key a concurrent writer committed meanwhile keeps theirs (one
       read by key tells them apart).
    """
    spec, category = _send_checked(template=template, category=category, operator=False, on_cap=on_cap)
    if not recipients:
        return []
    now = timezone.now()
    keys = [r.idempotency_key for r in recipients]
    existing = {log.idempotency_key: log for log in EmailLog.objects.filter(idempotency_key__in=keys)}
    addresses = {r.to.upper() for r in recipients if r.to}
    suppressions: dict[str, str] = {}
    if addresses:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT UPPER(email::text), reason FROM contacts_suppression WHERE UPPER(email::text) = ANY(%s)",
                [list(addresses)],
            )
            for address, reason in cursor.fetchall():
                suppressions.setdefault(address, reason)
    user_ids = [r.user_id for r in recipients if r.user_id]
    contacts = {c.user_id: c for c in Contact.objects.filter(user_id__in=user_ids)}
    rows: list[EmailLog] = []
    for person in recipients:
        if person.idempotency_key in existing:
            continue
        contact = contacts.get(person.user_id) if person.user_id else None
        facts = _SendFacts(
            existing_id=None,
            run_status=None,
            suppression=suppressions.get((person.to or "").upper()),
            recent_in_window=False,
            contact=contact,
        )
        status, block, decision = _send_decide(
            to=person.to, facts=facts, category=category, operator=False, held_out=False,
            now=now, priority=priority, on_cap=on_cap,
        )  # fmt: skip
        if decision.bumped:
            _bumped_apply(decision.bumped)
        log = EmailLog(
            idempotency_key=person.idempotency_key, to_email=person.to or "", contact=contact,
            template=template, subject=spec.subject, category=category, props=props, status=status,
            status_reason=block or "", held_until=decision.held_until, priority=priority,
            on_cap=on_cap, operator_mail=False, created_at=now,
        )  # fmt: skip
        rows.append(log)
    if rows:
        EmailLog.objects.bulk_create(rows, ignore_conflicts=True)
        ours = {log.pk for log in rows}
        theirs = [
            key
            for pk, key in EmailLog.objects.filter(
                idempotency_key__in=[r.idempotency_key for r in rows]
            ).values_list("pk", "idempotency_key")
            if pk not in ours
        ]
        if theirs:  # a concurrent send of the same key committed first: theirs is the one
            existing.update(
                {log.idempotency_key: log for log in EmailLog.objects.filter(idempotency_key__in=theirs)}
            )
        from contacts.lifecycle import email_emit

        for log in rows:
            if log.idempotency_key in existing:
                continue
            existing[log.idempotency_key] = log
            email_emit(email_id=log.pk, status=log.status)
            if log.status == Status.HELD:
                _release_after_commit(str(log.pk), log.held_until)
    return [existing[key] for key in keys]


def _decoded(row: list[Any]) -> list[Any]:
    """A raw row's values as the model's fields hold them (a cursor hands JSON back undecoded)."""
    fields = Contact._meta.concrete_fields
    return [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, row, strict=True)
    ]


def _block(*, to: str, facts: _SendFacts, category: str, operator: bool) -> tuple[str | None, str]:
    """Why this send may not go out and the status that records it; (None, queued) if it may."""
    if not to:
        return "no_email_address", Status.SKIPPED
    # Operator mail skips a contact's preferences, never the suppression list: a complaint or
    # a hard bounce means the address must get nothing from us, whoever sends.
    block = f"suppressed:{facts.suppression}" if facts.suppression else None
    if block is None and not operator:
        if facts.contact is not None:
            block = choices_block(contacts=[facts.contact], category=category)
        else:
            block = choices_block(contacts=list(Contact.objects.filter(email__iexact=to)), category=category)
    if block is None and facts.recent_in_window:
        # A send exactly `suppress` after the last one goes out, as a re-entry exactly
        # `entry_period` after the last one is admitted: a window excludes its end.
        block = "suppress_window"
    return block, Status.SUPPRESSED if block else Status.QUEUED


def _bumped_apply(bumped: tuple[tuple[Any, Any], ...]) -> None:
    """Lower-priority held sends that gave up their slot: to a later one, or skipped (their source
    chose "skip"). Inside the transaction (and the lock) that took the slot."""
    for email_id, held_until in bumped:
        if held_until is None:
            email_status_advance(
                email_id=email_id, to=Status.SKIPPED, reason=CAPPED_REASON, only_from=Status.HELD
            )
        elif EmailLog.objects.filter(pk=email_id, status=Status.HELD).update(
            held_until=held_until, status_reason=CAPPED_REASON, updated_at=timezone.now()
        ):
            _release_after_commit(str(email_id), held_until)


def _release_after_commit(email_id: str, held_until: Any) -> None:
    transaction.on_commit(lambda: email_release_task.apply_async(args=[email_id], eta=held_until))


def _resume(log: EmailLog, *, deliver: bool) -> EmailLog:
    """A repeat of a send: return its row, delivering it if a crash left it queued."""
    if log.status != Status.QUEUED or not deliver:
        return log
    try:
        return email_deliver(email_id=log.pk)
    except EmailDeliveryDeferred:
        _enqueue_retry(str(log.pk))
        return EmailLog.objects.get(pk=log.pk)


def email_held_release(*, email_id: UUID | str) -> EmailLog:
    """Deliver a held send whose moment came (a journey that waited for it calls this); a row
    still held (its moment moved later) is returned as it is, a transient failure retried by the task."""
    try:
        return email_release(email_id=email_id)
    except EmailDeliveryDeferred:
        _enqueue_retry(str(email_id))
        return EmailLog.objects.get(pk=email_id)


def _enqueue_retry(email_id: str) -> None:
    """Schedule the Celery retry after commit (at once when, as usual, no transaction is open)."""
    transaction.on_commit(
        lambda: email_deliver_task.apply_async(
            args=[email_id], countdown=settings.EMAIL_RETRY_FIRST_DELAY_SECONDS
        )
    )


def email_logs_forget(*, contact_id: UUID, email: str) -> None:
    """The erasure seam's forgetter for the email log: the address and props of every email the
    contact got (by id, and by address for mail sent before the contact existed)."""
    logs = EmailLog.objects.filter(contact_id=contact_id)
    if email:
        logs = EmailLog.objects.filter(Q(contact_id=contact_id) | Q(to_email=email))
    logs.update(to_email="", props={})
