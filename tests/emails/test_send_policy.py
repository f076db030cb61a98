"""The send-time policy: quiet hours hold a send in the recipient's zone, frequency caps skip or defer it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from contacts.categories import TRANSACTIONAL
from emails import policy
from emails.delivery import email_release
from emails.models import EmailLog
from emails.services import email_send
from emails.sweep import email_sweep

Status = EmailLog.Status
UPDATES = "product-updates"
# 22:00 in New York (EST) on a Monday.
NIGHT_IN_NEW_YORK = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
MORNING_IN_NEW_YORK = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 EST


@pytest.fixture
def quiet_nights(settings):
    settings.HOGSEND_QUIET_HOURS = {UPDATES: ("21:00", "08:00")}


@pytest.fixture
def clock():
    with time_machine.travel(NIGHT_IN_NEW_YORK, tick=False) as traveller:
        yield traveller


@pytest.fixture
def new_yorker(make_contact):
    return make_contact(properties={"timezone": "America/New_York"})


@pytest.mark.django_db
def test_a_send_inside_the_recipients_quiet_hours_is_held_until_they_end(
    quiet_nights, clock, new_yorker, send_welcome
):
    log = send_welcome(new_yorker, category=UPDATES)

    assert (log.status, log.status_reason, log.held_until) == (
        Status.HELD,
        "quiet_hours",
        MORNING_IN_NEW_YORK,
    )
    assert mail.outbox == []
    assert email_release(email_id=log.pk).status == Status.HELD  # not yet: still night in New York
    clock.move_to(MORNING_IN_NEW_YORK)
    assert email_release(email_id=log.pk).status == Status.SENT
    assert len(mail.outbox) == 1
    assert email_release(email_id=log.pk).status == Status.SENT  # a second release sends nothing
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_same_moment_is_daytime_for_a_recipient_in_another_zone(
    quiet_nights, clock, make_contact, send_welcome
):
    in_berlin = make_contact(properties={"timezone": "Europe/Berlin"})  # 04:00 → held until 08:00 CET

    assert send_welcome(in_berlin, category=UPDATES).held_until == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    in_tokyo = make_contact(properties={"timezone": "Asia/Tokyo"})  # 12:00: sent now
    assert send_welcome(in_tokyo, category=UPDATES).status == Status.SENT


@pytest.mark.django_db
def test_transactional_mail_is_exempt_from_the_global_window_unless_named(
    settings, clock, new_yorker, send_welcome
):
    settings.HOGSEND_QUIET_HOURS = {"*": ("21:00", "08:00")}

    assert send_welcome(new_yorker, category=UPDATES).status == Status.HELD
    assert send_welcome(new_yorker, category=TRANSACTIONAL).status == Status.SENT
    settings.HOGSEND_QUIET_HOURS = {"*": ("21:00", "08:00"), TRANSACTIONAL: ("21:00", "08:00")}
    assert send_welcome(new_yorker, category=TRANSACTIONAL).status == Status.HELD


@pytest.mark.django_db
def test_the_sweep_releases_a_held_send_whose_release_task_was_lost(
    quiet_nights, clock, new_yorker, send_welcome
):
    log = send_welcome(new_yorker, category=UPDATES)

    assert email_sweep().deliver == []
    clock.move_to(MORNING_IN_NEW_YORK + timedelta(minutes=5))
    swept = email_sweep()
    assert (swept.released, swept.deliver) == (1, [log.pk])
    assert EmailLog.objects.get(pk=log.pk).status == Status.QUEUED


# --- frequency caps ------------------------------------------------------------------------------


@pytest.fixture
def two_a_day(settings):
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(2, "24h"), (3, "7d")]}


@pytest.mark.django_db
def test_a_send_over_the_cap_is_skipped_as_frequency_capped(two_a_day, clock, make_contact, send_welcome):
    contact = make_contact()
    first, second = send_welcome(contact, category=UPDATES), send_welcome(contact, category=UPDATES)
    third = send_welcome(contact, category=UPDATES)

    assert [first.status, second.status] == [Status.SENT, Status.SENT]
    assert (third.status, third.status_reason) == (Status.SKIPPED, "frequency_capped")
    assert send_welcome(contact, category="journey").status == Status.SENT  # another category
    assert send_welcome(contact, category=TRANSACTIONAL).status == Status.SENT  # exempt
    assert send_welcome(make_contact(), category=UPDATES).status == Status.SENT  # another contact
    clock.shift(timedelta(hours=24, seconds=1))
    assert send_welcome(contact, category=UPDATES).status == Status.SENT  # the day's window moved on
    clock.shift(timedelta(hours=1))
    assert send_welcome(contact, category=UPDATES).status_reason == "frequency_capped"  # 3 in 7 days


@pytest.mark.django_db
def test_a_deferred_send_is_held_until_the_next_free_slot_and_takes_it(
    two_a_day, clock, make_contact, send_welcome
):
    contact = make_contact()
    send_welcome(contact, category=UPDATES)
    clock.shift(timedelta(hours=2))
    send_welcome(contact, category=UPDATES)

    deferred = send_welcome(contact, category=UPDATES, on_cap="defer")
    after = send_welcome(contact, category=UPDATES, on_cap="defer")

    assert (deferred.status, deferred.status_reason) == (Status.HELD, "frequency_capped")
    assert deferred.held_until == NIGHT_IN_NEW_YORK + timedelta(hours=24)  # the first left the window
    # The 7-day cap (3) is now full until the first send leaves it.
    assert after.held_until == NIGHT_IN_NEW_YORK + timedelta(days=7)


@pytest.mark.django_db
def test_a_deferred_send_lands_outside_quiet_hours(settings, clock, new_yorker, send_welcome):
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(1, "24h")]}
    clock.move_to(MORNING_IN_NEW_YORK + timedelta(hours=12))  # 20:00 EST, no quiet hours yet: sent
    assert send_welcome(new_yorker, category=UPDATES).status == Status.SENT
    settings.HOGSEND_QUIET_HOURS = {UPDATES: ("19:00", "08:00")}
    clock.shift(timedelta(hours=-2))  # 18:00 EST: not quiet, but the day's slot is taken

    deferred = send_welcome(new_yorker, category=UPDATES, on_cap="defer")

    # The slot frees at 20:00 tomorrow, inside tomorrow's quiet hours: 08:00 the day after.
    assert (deferred.status_reason, deferred.held_until) == (
        "frequency_capped",
        MORNING_IN_NEW_YORK + timedelta(days=2),
    )


@pytest.mark.django_db
def test_a_higher_priority_send_takes_the_slot_of_a_lower_one_still_held(
    settings, clock, new_yorker, send_welcome
):
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(1, "24h")]}
    settings.HOGSEND_QUIET_HOURS = {UPDATES: ("21:00", "08:00")}
    routine = send_welcome(new_yorker, category=UPDATES, on_cap="defer")
    assert routine.held_until == MORNING_IN_NEW_YORK

    urgent = send_welcome(new_yorker, category=UPDATES, priority=10)
    equal = send_welcome(new_yorker, category=UPDATES, priority=10)

    assert (urgent.status, urgent.held_until) == (Status.HELD, MORNING_IN_NEW_YORK)
    routine.refresh_from_db()
    assert (routine.status, routine.held_until) == (Status.HELD, MORNING_IN_NEW_YORK + timedelta(hours=24))
    assert (equal.status, equal.status_reason) == (Status.SKIPPED, "frequency_capped")  # no lower one left


@pytest.mark.django_db
def test_a_bumped_send_whose_source_chose_skip_is_skipped(settings, clock, new_yorker, send_welcome):
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(1, "24h")]}
    settings.HOGSEND_QUIET_HOURS = {UPDATES: ("21:00", "08:00")}
    routine = send_welcome(new_yorker, category=UPDATES)  # held for quiet hours, skip on cap

    send_welcome(new_yorker, category=UPDATES, priority=1)

    routine.refresh_from_db()
    assert (routine.status, routine.status_reason) == (Status.SKIPPED, "frequency_capped")


@pytest.mark.django_db
def test_an_unknown_on_cap_choice_is_refused_with_the_choices(make_contact, send_welcome):
    from contacts.addresses import EmailError

    with pytest.raises(EmailError, match="on_cap must be one of 'skip', 'defer'"):
        send_welcome(make_contact(), on_cap="later")


@pytest.mark.django_db
def test_a_category_without_a_policy_costs_no_statement(settings, make_contact, send_welcome):
    from django.test.utils import CaptureQueriesContext

    contact = make_contact()
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(2, "24h")]}
    with CaptureQueriesContext(connection) as uncapped:
        send_welcome(contact, category="journey")
    with CaptureQueriesContext(connection) as capped:
        send_welcome(contact, category=UPDATES)

    assert not any("advisory" in q["sql"] for q in uncapped.captured_queries)
    assert len(capped.captured_queries) == len(uncapped.captured_queries) + 2  # the lock and the read


def test_a_wrong_policy_setting_is_refused_with_what_to_write(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.HOGSEND_FREQUENCY_CAPS = {TRANSACTIONAL: [(1, "24h")]}
    with pytest.raises(ImproperlyConfigured, match="never capped"):
        policy.send_policy()
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(1, "a day")]}
    with pytest.raises(ImproperlyConfigured, match=r"use e\.g\. '24h'"):
        policy.send_policy()
    settings.HOGSEND_FREQUENCY_CAPS = {}
    settings.HOGSEND_QUIET_HOURS = {UPDATES: ("9pm", "08:00")}
    with pytest.raises(ImproperlyConfigured, match="'HH:MM'"):
        policy.send_policy()


# --- the race for the last slot ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sends_racing_for_the_last_slot_cannot_both_pass(settings, make_contact, monkeypatch):
    """Real concurrency: four threads, each on its own PostgreSQL connection, reach the cap check
    together. Each waits at a barrier after reading the slots; with the lock only one is inside
    at a time (the barrier gives up), without it all four would read a free slot and all send."""
    settings.HOGSEND_FREQUENCY_CAPS = {UPDATES: [(1, "24h")]}
    contact = make_contact()
    senders = 4
    start, inside = threading.Barrier(senders), threading.Barrier(senders)
    read = policy._slots_lock_and_read

    def read_then_linger(**kwargs):
        slots = read(**kwargs)
        try:
            inside.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass  # the others are waiting for the lock, as they must
        return slots

    monkeypatch.setattr(policy, "_slots_lock_and_read", read_then_linger)
    statuses: list[str] = []

    def send(n: int) -> None:
        try:
            start.wait()
            log = email_send(
                to=contact.email,
                template="activation/welcome",
                props={"first_name": "Ada"},
                user_id=contact.user_id,
                category=UPDATES,
                idempotency_key=f"race-{n}",
            )
            statuses.append(log.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [Status.SENT] + [Status.SKIPPED] * (senders - 1)
    assert (
        EmailLog.objects.filter(status=Status.SKIPPED, status_reason="frequency_capped").count()
        == senders - 1
    )


# --- what the Studio and the API say -------------------------------------------------------------


@pytest.mark.django_db
def test_a_held_send_reads_held_until_in_the_studio_and_the_api(
    quiet_nights, clock, new_yorker, send_welcome, admin_client, client
):
    from django.urls import reverse

    from contacts.services import api_key_create

    log = send_welcome(new_yorker, category=UPDATES)
    held = "held until 2026-03-03 08:00 America/New_York (13:00 UTC)"

    page = admin_client.get(reverse("admin:emails_emaillog_change", args=[log.pk])).content.decode()
    assert '<span class="studio-pill held" id="email-status">held</span> quiet_hours' in page
    assert f'<strong id="email-held-until">{held}</strong>' in page
    listing = admin_client.get(
        reverse("admin:emails_emaillog_changelist"), {"status": "held"}
    ).content.decode()
    assert "until 2026-03-03 08:00 America/New_York" in listing
    _, secret = api_key_create(name="admin", scopes=["admin"])
    status = client.get(f"/v1/emails/{log.pk}", headers={"Authorization": f"Bearer {secret}"}).json()
    assert (status["status"], status["reason"], status["heldUntil"]) == (
        "held",
        "quiet_hours",
        "2026-03-03T13:00:00Z",
    )
    assert (
        client.get(f"/v1/emails/{new_yorker.pk}", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 404
    )


@pytest.mark.django_db(transaction=True)
def test_a_held_send_is_delivered_by_its_release_task_on_a_real_celery_worker_when_the_window_ends(
    settings, smtp_server, make_contact, tmp_path
):
    from django.utils import timezone

    from hogsend.celery import app
    from tests.support import celery_process, wait_until

    app.control.purge()
    now = timezone.now()
    ends = now + timedelta(seconds=6)
    settings.HOGSEND_QUIET_HOURS = {
        UPDATES: ((now - timedelta(hours=1)).strftime("%H:%M:%S"), ends.strftime("%H:%M:%S"))
    }
    contact = make_contact()  # in the default zone, UTC
    log = email_send(
        to=contact.email,
        template="activation/welcome",
        props={"first_name": "Ada"},
        user_id=contact.user_id,
        category=UPDATES,
        idempotency_key="held-on-celery",
    )
    assert (log.status, log.held_until) == (Status.HELD, ends.replace(microsecond=0))

    with celery_process(
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
    ):
        sent = wait_until(
            lambda: EmailLog.objects.filter(pk=log.pk, status=Status.SENT).first(),
            timeout=120,
            what="the release task to deliver the held email",
        )

    assert sent.sent_at >= log.held_until
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [[contact.email]]
