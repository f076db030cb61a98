"""Hosted signup forms and double opt-in over HTTP: the form, the confirmation email and link, the API."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from contacts.addresses import EmailError
from contacts.confirmation import confirmation_token_make
from contacts.models import ConsentChange, Contact, Event
from contacts.services import contact_unsubscribe
from emails.confirmation import confirmations_sweep_task, confirmations_unsent
from emails.models import EmailLog
from emails.services import email_send

pytestmark = pytest.mark.django_db
FORM = "/forms/newsletter/"
Kind = ConsentChange.Kind


@pytest.fixture(autouse=True)
def _no_rate_limit_carryover(settings):
    from django.core.cache import cache

    cache.clear()  # the per-IP counter lives in the shared cache
    settings.PUBLIC_BASE_URL = "https://mail.example.com"


def form_token(client: Client, url: str = FORM) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def submit(client: Client, email: str = "ada@example.com", url: str = FORM, **extra):
    return client.post(url, {"email": email, "name": "Ada", "form_token": form_token(client, url), **extra})


def confirm_link(message) -> str:
    return urlsplit(
        re.search(r"https://mail\.example\.com(/forms/confirm/[^/\s]+/)", message.body).group(0)
    ).path


def welcome(contact: Contact, key: str = "welcome") -> EmailLog:
    return email_send(
        to=contact.email,
        template="activation/welcome",
        props={"first_name": "Ada"},
        user_id=contact.user_id,
        idempotency_key=key,
    )


def test_a_signup_sends_only_the_confirmation_until_the_person_confirms(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client)
    assert response.status_code == 302 and response["Location"] == f"{FORM}?submitted=1"
    assert "check your inbox" in client.get(response["Location"]).content.decode()

    ada = Contact.objects.get(email="ada@example.com")
    assert ada.awaiting_confirmation and ada.properties == {"newsletter": True, "name": "Ada"}
    [message] = mail.outbox
    assert message.to == ["ada@example.com"] and message.subject == "Please confirm your subscription"
    assert EmailLog.objects.get().category == "confirmation"
    # Nothing else reaches them: a journey email, and transactional mail, are both held back.
    assert (welcome(ada).status, welcome(ada, "w2").status_reason) == ("suppressed", "unconfirmed")
    transactional = email_send(
        to=ada.email,
        template="activation/welcome",
        props={"first_name": "A"},
        user_id=ada.user_id,
        category="transactional",
        idempotency_key="t1",
    )
    assert transactional.status_reason == "unconfirmed"
    assert len(mail.outbox) == 1
    assert Event.objects.filter(contact=ada, name="form.submitted").exists()
    row = ada.consent_changes.get()
    assert (row.kind, row.source, row.detail["form"], row.ip_address) == (
        "confirmation_requested",
        "signup_form",
        "newsletter",
        "127.0.0.1",
    )

    link = confirm_link(message)
    page = client.get(link)  # what a mail scanner's prefetch does
    assert page.status_code == 200 and "Yes, confirm my subscription" in page.content.decode()
    client.head(link)
    ada.refresh_from_db()
    assert ada.awaiting_confirmation and ada.consent_changes.count() == 1

    confirmed = client.post(link, headers={"User-Agent": "Firefox/133"})
    assert confirmed.status_code == 200 and "is subscribed" in confirmed.content.decode()
    ada.refresh_from_db()
    assert ada.confirmed_at is not None and not ada.awaiting_confirmation
    row = ada.consent_changes.get(kind=Kind.CONFIRMED)
    assert (row.source, row.user_agent, row.detail["form"]) == (
        "confirmation_link",
        "Firefox/133",
        "newsletter",
    )
    assert row.token_sha256
    event = Event.objects.get(contact=ada, name="contact.confirmed")
    assert event.properties["form"] == "newsletter" and event.source == "system"
    assert welcome(ada, "after").status == "sent"


def test_confirming_twice_changes_nothing_the_second_time(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        submit(client)
    link = confirm_link(mail.outbox[0])
    client.post(link)
    ada = Contact.objects.get()
    first_confirmed = ada.confirmed_at
    again = client.post(link)
    assert again.status_code == 200 and "already confirmed" in again.content.decode()
    ada.refresh_from_db()
    assert ada.confirmed_at == first_confirmed
    assert ada.consent_changes.filter(kind=Kind.CONFIRMED).count() == 1
    assert Event.objects.filter(name="contact.confirmed").count() == 1


def test_an_expired_or_tampered_link_gets_a_clear_page_and_changes_nothing(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        submit(client)
    link = confirm_link(mail.outbox[0])
    tampered = link[:-4] + "xyz/"
    for method in (client.get, client.post):
        response = method(tampered)
        assert response.status_code == 400 and "This link doesn&#x27;t work" in response.content.decode()
    with time_machine.travel(timezone.now() + timedelta(hours=73)):
        for method in (client.get, client.post):
            response = method(link)
            assert response.status_code == 410 and "has expired" in response.content.decode()
    ada = Contact.objects.get()
    assert ada.awaiting_confirmation and ada.consent_changes.count() == 1
    assert not Event.objects.filter(name="contact.confirmed").exists()


def test_a_link_sent_before_an_unsubscribe_cannot_undo_it(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        submit(client)
    link = confirm_link(mail.outbox[0])
    ada = Contact.objects.get()
    unused = ConsentChange.objects.create(
        contact=ada, email=ada.email, kind=Kind.CONFIRMATION_REQUESTED, source="api"
    )
    client.post(link)
    contact_unsubscribe(contact=ada)

    used_again = client.post(link)  # it confirmed once; it does nothing now
    stale = client.post(f"/forms/confirm/{confirmation_token_make(request_id=unused.pk)}/")

    assert used_again.status_code == 200 and "already confirmed" in used_again.content.decode()
    assert stale.status_code == 410 and "no longer valid" in stale.content.decode()
    ada.refresh_from_db()
    assert ada.unsubscribed_at is not None
    assert not ada.consent_changes.filter(kind=Kind.RESUBSCRIBED).exists()


def test_signing_up_again_after_unsubscribing_resubscribes_only_once_confirmed(
    client, django_capture_on_commit_callbacks
):
    bob = Contact.objects.create(user_id="bob", email="bob@example.com")
    contact_unsubscribe(contact=bob)
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, "BOB@example.com")
    [message] = mail.outbox  # the confirmation reaches an unsubscribed address that asked for it
    bob.refresh_from_db()
    assert bob.unsubscribed_at is not None
    client.post(confirm_link(message))
    bob.refresh_from_db()
    assert bob.unsubscribed_at is None and bob.confirmed_at is not None
    assert list(bob.consent_changes.order_by("id").values_list("kind", flat=True)) == [
        "unsubscribed",
        "confirmation_requested",
        "confirmed",
        "resubscribed",
    ]


def test_a_subscribed_contact_signing_up_gets_no_email_and_the_page_says_the_same(
    client, django_capture_on_commit_callbacks
):
    Contact.objects.create(user_id="cy", email="cy@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client, "cy@example.com")
    assert response["Location"] == f"{FORM}?submitted=1"
    assert mail.outbox == [] and not ConsentChange.objects.exists()


def test_a_second_signup_soon_after_sends_no_second_email(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        submit(client)
        submit(client)
    assert len(mail.outbox) == 1
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=11)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        submit(client)
    assert len(mail.outbox) == 2


def test_bad_input_gets_the_form_back_with_a_message(client):
    for email, message in (("", "Enter your email address."), ("ada@", "Enter a valid email address")):
        response = client.post(FORM, {"email": email, "form_token": form_token(client)})
        assert response.status_code == 400 and message in response.content.decode()
    response = client.post(FORM, {"email": "ada@example.com", "form_token": "forged"})
    assert response.status_code == 400 and "submit it again" in response.content.decode()
    assert 'value="ada@example.com"' in response.content.decode()  # what they typed is kept
    assert client.post(FORM, {"email": "ada@example.com"}).status_code == 400
    assert client.get("/forms/no-such-form/").status_code == 404
    assert not Contact.objects.exists()


def test_a_form_token_of_another_form_or_too_old_is_refused(client, settings):
    from contacts.signup import define_signup_form

    define_signup_form("other", "Other list")
    token = form_token(client, "/forms/other/")
    assert client.post(FORM, {"email": "a@example.com", "form_token": token}).status_code == 400
    token = form_token(client)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert client.post(FORM, {"email": "a@example.com", "form_token": token}).status_code == 400
    assert not Contact.objects.exists()


def test_a_bot_filling_the_honeypot_is_thanked_and_nothing_is_stored(client):
    response = submit(client, website="https://spam.example.com")
    assert response.status_code == 302
    assert not Contact.objects.exists() and mail.outbox == []


def test_too_many_signups_from_one_address_get_a_429(client, settings):
    settings.SIGNUP_RATE_LIMIT_PER_HOUR = 2
    assert submit(client, "a1@example.com").status_code == 302
    assert submit(client, "a2@example.com").status_code == 302
    response = submit(client, "a3@example.com")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "try again" in response.content.decode()
    assert not Contact.objects.filter(email="a3@example.com").exists()


def test_the_embed_may_be_framed_and_posts_without_a_csrf_cookie(settings):
    client = Client(enforce_csrf_checks=True)
    page = client.get(f"{FORM}embed/")
    assert page["Content-Security-Policy"] == "frame-ancestors *"
    assert "X-Frame-Options" not in page
    assert client.get(FORM)["X-Frame-Options"] == "DENY"
    token = re.search(r'name="form_token" value="([^"]+)"', page.content.decode()).group(1)
    response = Client(enforce_csrf_checks=True).post(
        f"{FORM}embed/", {"email": "e@example.com", "form_token": token}
    )
    assert response.status_code == 302 and response["Location"] == f"{FORM}embed/?submitted=1"
    assert Contact.objects.filter(email="e@example.com").exists()


def test_embed_origins_limit_who_may_frame_a_form(client):
    from contacts.signup import SignupFormError, define_signup_form

    define_signup_form("framed", "Framed", embed_origins=("https://www.example.com",))
    assert (
        client.get("/forms/framed/embed/")["Content-Security-Policy"]
        == "frame-ancestors https://www.example.com"
    )
    with pytest.raises(SignupFormError, match="no path"):
        define_signup_form("bad", "Bad", embed_origins=("https://www.example.com/signup",))
    with pytest.raises(SignupFormError, match="lower-case"):
        define_signup_form("Bad Slug", "Bad")


def test_a_single_opt_in_form_subscribes_at_once_with_a_ledger_row(
    client, django_capture_on_commit_callbacks
):
    from contacts.signup import define_signup_form

    define_signup_form("open", "Open list", double_opt_in=False)
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, "dee@example.com", url="/forms/open/")
    dee = Contact.objects.get()
    assert not dee.awaiting_confirmation and mail.outbox == []
    assert list(dee.consent_changes.values_list("kind", "source")) == [("subscribed", "signup_form")]
    assert welcome(dee).status == "sent"


def test_only_the_confirmation_template_may_use_the_confirmation_category():
    ada = Contact.objects.create(user_id="ada", email="ada@example.com")
    with pytest.raises(EmailError, match="contacts/confirm"):
        email_send(
            to=ada.email,
            template="activation/welcome",
            props={"first_name": "A"},
            category="confirmation",
            idempotency_key="sneaky",
        )


def test_the_api_can_require_double_opt_in_per_call(api, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    from emails import confirmation as tasks

    monkeypatch.setattr(
        tasks.confirmation_send_task, "apply_async", lambda args, **kw: enqueued.append(args[0])
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/v1/events",
            {"name": "user.created", "userId": "u1", "userEmail": "u1@example.com", "doubleOptIn": True},
        )
        api.post("/v1/events", {"name": "user.created", "userId": "u2", "userEmail": "u2@example.com"})
        api.post("/v1/events", {"name": "page.viewed", "userId": "u1", "doubleOptIn": True})  # not new
    assert response.status_code == 202
    u1, u2 = Contact.objects.get(user_id="u1"), Contact.objects.get(user_id="u2")
    assert u1.awaiting_confirmation and not u2.confirmation_required
    [request] = u1.consent_changes.all()
    assert (request.kind, request.source) == ("confirmation_requested", "api")
    assert enqueued == [request.pk]  # handed to a worker: nothing slow inside the request
    assert mail.outbox == []
    assert api.get("/v1/contacts/u1").json()["confirmationRequired"] is True


def test_a_setting_requires_double_opt_in_for_every_new_contact(
    api, settings, django_capture_on_commit_callbacks
):
    settings.CONTACTS_DOUBLE_OPT_IN = True
    response = api.put("/v1/contacts", {"userId": "p1", "email": "p1@example.com"})
    assert response.status_code == 201 and response.json()["confirmationRequired"] is True
    api.post("/v1/events/batch", {"events": [{"name": "x", "userId": "b1", "userEmail": "b1@example.com"}]})
    api.post("/v1/events", {"name": "x", "userId": "b2", "userEmail": "b2@example.com", "doubleOptIn": False})
    assert Contact.objects.get(user_id="p1").awaiting_confirmation
    assert Contact.objects.get(user_id="b1").awaiting_confirmation
    assert not Contact.objects.get(user_id="b2").confirmation_required


def test_the_sweep_sends_a_confirmation_whose_hand_off_was_lost(api, monkeypatch):
    from contacts import confirmation

    monkeypatch.setattr(confirmation, "_hand_off", lambda ids, at_once: None)  # the broker was down
    api.post("/v1/events", {"name": "x", "userId": "s1", "userEmail": "s1@example.com", "doubleOptIn": True})
    assert confirmations_unsent() == []  # a fresh request is left to its own hand-off a while
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert confirmations_sweep_task() == 1
        assert confirmations_sweep_task() == 0  # sent once, never again
    [message] = mail.outbox
    assert message.to == ["s1@example.com"] and "/forms/confirm/" in message.body
