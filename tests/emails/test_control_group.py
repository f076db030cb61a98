"""The global control group and a journey's holdout at send time: marketing mail only."""

from __future__ import annotations

import pytest
from django.core import mail

from emails.control_group import in_control_group
from emails.models import EmailLog

pytestmark = pytest.mark.django_db
Status = EmailLog.Status
ALERT = {"customer_email": "ada@example.com", "customer_id": "ada", "seats": 40, "requested_at": "09:00"}


def _split(make_contact, n=60):
    contacts = [make_contact() for _ in range(n)]
    inside = [c for c in contacts if in_control_group(contact_id=c.pk)]
    return contacts, inside


def test_the_control_group_gets_no_marketing_mail_and_everyone_else_does(
    settings, make_contact, send_welcome
):
    settings.HOGSEND_CONTROL_GROUP_PERCENT = 25
    contacts, inside = _split(make_contact)
    assert 5 <= len(inside) <= 25  # about a quarter

    logs = {c.pk: send_welcome(c) for c in contacts}

    for contact in contacts:
        log = logs[contact.pk]
        if contact in inside:
            assert (log.status, log.status_reason) == (Status.SKIPPED, "control_group")
        else:
            assert log.status == Status.SENT
    assert len(mail.outbox) == len(contacts) - len(inside)


def test_control_group_membership_is_stable_and_moves_only_with_the_salt(settings, make_contact):
    settings.HOGSEND_CONTROL_GROUP_PERCENT = 50
    contacts = [make_contact() for _ in range(40)]
    first = [in_control_group(contact_id=c.pk) for c in contacts]
    assert first == [in_control_group(contact_id=c.pk) for c in contacts]
    settings.HOGSEND_CONTROL_GROUP_SALT = "another salt"
    assert first != [in_control_group(contact_id=c.pk) for c in contacts]
    settings.HOGSEND_CONTROL_GROUP_PERCENT = 0
    assert not any(in_control_group(contact_id=c.pk) for c in contacts)


def test_transactional_mail_is_never_held_out_by_the_control_group_or_a_holdout(
    settings, make_contact, send_welcome
):
    settings.HOGSEND_CONTROL_GROUP_PERCENT = 100
    contact = make_contact()

    receipt = send_welcome(contact, template="transactional/csm-alert", props=ALERT, category="transactional")
    operator = send_welcome(
        contact,
        template="transactional/csm-alert",
        props=ALERT,
        category="transactional",
        skip_preference_check=True,
    )
    held = send_welcome(
        contact, template="transactional/csm-alert", props=ALERT, category="transactional", held_out=True
    )

    assert [receipt.status, operator.status, held.status] == [Status.SENT] * 3


def test_a_held_out_send_is_recorded_as_skipped_and_never_reaches_the_provider(make_contact, send_welcome):
    log = send_welcome(make_contact(), held_out=True)

    assert (log.status, log.status_reason, log.sent_at) == (Status.SKIPPED, "held_out", None)
    assert mail.outbox == []
