"""Operator actions on email templates. The Studio (and any other operator surface) calls these."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from contacts.categories import TRANSACTIONAL
from contacts.services import audit_record
from emails.delivery import EmailDeliveryDeferred, email_deliver
from emails.models import EmailLog
from emails.registry import get_template
from emails.services import email_send


def template_test_send(
    *,
    actor: Any,
    template: str,
    to: str,
    props: dict[str, Any] | None = None,
    action: str = "template.test_send",
) -> EmailLog:
    """Send a template with its example props (or `props`) to an operator's address, marked [test].

    Operator mail: transactional, it skips the preference check (it goes to the operator, never to
    a contact) and is audited in the same transaction as its log row; the provider is called
    after that commit, never inside it.
    """
    spec = get_template(template)
    with transaction.atomic():
        log = email_send(
            deliver=False,
            to=to,
            template=spec.key,
            props=dict(spec.example_props if props is None else props),
            subject=f"[test] {spec.subject}",
            category=TRANSACTIONAL,
            skip_preference_check=True,
            idempotency_key=f"studio-test:{uuid.uuid4()}",
        )
        audit_record(
            actor=actor,
            action=action,
            target_type="email_template",
            target_id=spec.key,
            detail={"to": to, "email_id": str(log.pk)},
        )
    try:
        return email_deliver(email_id=log.pk)
    except EmailDeliveryDeferred:
        return EmailLog.objects.get(pk=log.pk)  # queued with the reason; the sweep retries it
