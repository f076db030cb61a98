"""Consent, categories, idempotency and the status machine of the send pipeline."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from contacts.addresses import EmailError
from contacts.categories import category_get
from contacts.models import Suppression
from contacts.services import contact_category_set, contact_unsubscribe
from contacts.suppressions import suppression_create, suppression_remove
from emails.models import EmailLog
from emails.render import email_render
from emails.services import email_send
from emails.status import InvalidEmailTransition, email_status_advance

pytestmark = pytest.mark.django_db
Status = EmailLog.Status


def test_no_journey_email_reaches_an_unsubscribed_contact(make_contact, send_welcome):
    contact = contact_unsubscribe(contact=make_contact())

    log = send_welcome(contact)

    assert (log.status, log.status_reason) == (Status.SUPPRESSED, "unsubscribed")
    assert mail.outbox == []


def test_unsubscribed_address_is_blocked_even_when_the_send_names_no_user(make_contact):
    contact = contact_unsubscribe(contact=make_contact(email="gone@example.com"))

    log = email_send(to=contact.email, template="activation/welcome", idempotency_key="k1")

    assert log.status == Status.SUPPRESSED
    assert mail.outbox == []


def test_a_category_opt_out_blocks_that_category_only(make_contact, send_welcome):
    contact = contact_category_set(contact=make_contact(), category="product-updates", subscribed=False)

    blocked = send_welcome(contact, category="product-updates")
    allowed = send_welcome(contact, category="journey")

    assert (blocked.status, blocked.status_reason) == (Status.SUPPRESSED, "category_opt_out:product-updates")
    assert allowed.status == Status.SENT
    assert len(mail.outbox) == 1


def test_a_default_off_category_needs_an_explicit_opt_in(make_contact, send_welcome):
    assert category_get("tips").default_opt_in is False
    contact = make_contact()

    before = send_welcome(contact, category="tips")
    contact = contact_category_set(contact=contact, category="tips", subscribed=True)
    after = send_welcome(contact, category="tips")

    assert before.status == Status.SUPPRESSED
    assert after.status == Status.SENT
    assert contact.category_opt_ins == ["tips"]


def test_an_unknown_category_is_refused_with_a_clear_error(make_contact, send_welcome):
    with pytest.raises(EmailError, match="unknown email category 'newsletter'"):
        send_welcome(make_contact(), category="newsletter")


def test_only_transactional_mail_may_skip_the_preference_check(make_contact, send_welcome):
    contact = contact_unsubscribe(contact=make_contact())
    with pytest.raises(EmailError, match="only transactional"):
        send_welcome(contact, skip_preference_check=True)


def test_a_suppressed_address_gets_nothing_and_lifting_it_lets_mail_through(make_contact, send_welcome):
    contact = make_contact(email="Bouncy@Example.com")
    suppression_create(email=contact.email, reason=Suppression.Reason.BOUNCE, note="3 bounces")

    blocked = send_welcome(contact)
    assert (blocked.status, blocked.status_reason) == (Status.SUPPRESSED, "suppressed:bounce")

    assert suppression_remove(email="bouncy@example.com") == 1
    assert send_welcome(contact).status == Status.SENT


def test_a_complaint_outranks_an_earlier_manual_suppression():
    suppression_create(email="x@example.com", reason=Suppression.Reason.MANUAL)
    suppression = suppression_create(email="X@example.com", reason=Suppression.Reason.COMPLAINT, note="spam")
    assert (suppression.email, suppression.reason) == ("x@example.com", "complaint")
    assert Suppression.objects.count() == 1


def test_the_same_idempotency_key_never_sends_twice(make_contact, send_welcome):
    contact = make_contact()
    first = send_welcome(contact, idempotency_key="once")
    second = send_welcome(contact, idempotency_key="once")
    assert first.pk == second.pk
    assert len(mail.outbox) == 1


def test_a_missing_required_prop_is_a_clear_error():
    with pytest.raises(EmailError, match="needs props: csm_name"):
        email_render(template="onboarding/concierge-intro", props={})


def test_a_missing_prop_at_send_time_records_a_failed_send(make_contact, send_welcome):
    log = send_welcome(make_contact(), template="onboarding/concierge-intro", props={})
    assert log.status == Status.FAILED
    assert "needs props: csm_name" in log.status_reason


def test_an_invalid_recipient_address_fails_without_reaching_the_provider(make_contact, send_welcome):
    log = send_welcome(make_contact(email=""), to="not-an-address")
    assert log.status == Status.FAILED
    assert "not a valid email address" in log.status_reason
    assert mail.outbox == []


def test_the_text_part_is_not_html_escaped_but_the_html_part_is():
    rendered = email_render(template="activation/welcome", props={"first_name": "O'Brien <3"})
    assert "Welcome, O'Brien <3!" in rendered.text
    assert "Brien &lt;3" in rendered.html and "<3" not in rendered.html


def test_render_without_consent_context_is_a_preview_without_links():
    rendered = email_render(template="activation/welcome", props={"first_name": "Ada"})
    assert "Welcome, Ada!" in rendered.html
    assert "/unsubscribe/" not in rendered.html


def test_a_status_never_moves_backwards(make_contact, send_welcome):
    log = send_welcome(make_contact())
    assert email_status_advance(email_id=log.pk, to=Status.OPENED)

    assert email_status_advance(email_id=log.pk, to=Status.DELIVERED) is False
    log.refresh_from_db()
    assert log.status == Status.OPENED
    with pytest.raises(InvalidEmailTransition, match="from 'opened' to 'sent'"):
        email_status_advance(email_id=log.pk, to=Status.SENT, strict=True)
    assert email_status_advance(email_id=log.pk, to=Status.CLICKED)
    assert email_status_advance(email_id=log.pk, to=Status.COMPLAINED)
    assert email_status_advance(email_id=log.pk, to=Status.CLICKED) is False


def test_a_suppressed_or_failed_email_is_final(make_contact, send_welcome):
    log = send_welcome(contact_unsubscribe(contact=make_contact()))
    for target in (Status.SENT, Status.DELIVERED, Status.OPENED, Status.BOUNCED):
        assert email_status_advance(email_id=log.pk, to=target) is False


def test_a_queued_send_rechecks_consent_when_it_is_finally_delivered(make_contact):
    from emails.delivery import email_deliver

    contact = make_contact()
    log = EmailLog.objects.create(
        to_email=contact.email,
        contact=contact,
        template="activation/welcome",
        subject="Hi",
        category="journey",
        idempotency_key="queued-1",
        created_at=timezone.now(),
    )
    contact_unsubscribe(contact=contact)

    log = email_deliver(email_id=log.pk)

    assert (log.status, log.status_reason) == (Status.SUPPRESSED, "unsubscribed")
    assert mail.outbox == []


def test_a_send_to_no_address_is_recorded_as_skipped_with_a_reason_and_sends_nothing(make_contact):
    contact = make_contact(email="")

    log = email_send(to="", template="activation/welcome", user_id=contact.user_id, idempotency_key="k")

    assert (log.status, log.status_reason, log.contact) == (Status.SKIPPED, "no_email_address", contact)
    assert email_status_advance(email_id=log.pk, to=Status.SENT) is False
    assert mail.outbox == []


def test_a_single_sends_row_is_written_with_the_values_save_would_send(db):
    """The row's fast conversion (emails.services._log_params) gives what each field's own does."""
    from django.db import connection
    from django.utils import timezone

    from contacts.models import Contact
    from emails.services import _LOG_FIELDS, _log_params

    contact = Contact.objects.create(user_id="u-params", email="p@example.com")
    log = EmailLog(
        idempotency_key="k-params",
        to_email="p@example.com",
        contact=contact,
        template="activation/welcome",
        subject="Hi",
        category="journey",
        props={"first_name": "Ada", "n": [1, 2]},
        status=EmailLog.Status.HELD,
        status_reason="",
        held_until=timezone.now(),
        priority=3,
        on_cap="defer",
        operator_mail=True,
        created_at=timezone.now(),
    )
    slow = {}
    for field in _LOG_FIELDS:
        value = field.get_db_prep_save(field.pre_save(log, add=True), connection)
        slow[field.attname] = str(value) if isinstance(value, str) else value
    fast = _log_params(log)
    assert fast.keys() == slow.keys()
    for name, value in slow.items():
        if name == "updated_at":  # auto_now: stamped at each conversion
            continue
        assert (type(fast[name]), repr(fast[name])) == (type(value), repr(value)), name
    assert fast["status"] == "held" and type(fast["status"]) is str
