from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from contacts.admin_base import EstimatedCountPaginator
from contacts.models import ApiKey, AuditEntry
from emails.models import EmailLog, SentMessage

pytestmark = pytest.mark.django_db
LOGS = reverse("admin:emails_emaillog_changelist")


def test_the_email_log_lists_status_opens_and_clicks(
    admin_client, studio_data, django_assert_max_num_queries
):
    EmailLog.objects.filter(to_email="bob@example.com").update(opened_at="2026-01-06T10:00Z")
    with django_assert_max_num_queries(6):
        response = admin_client.get(LOGS)
    html = response.content.decode()
    assert "bob@example.com" in html
    assert re.search(r"/static/admin/img/icon-yes\.[0-9a-f]{12}\.svg", html)  # the collected, hashed name
    assert {log.to_email for log in admin_client.get(LOGS, {"q": "bob@"}).context["cl"].result_list} == {
        "bob@example.com"
    }


def test_an_emails_page_shows_the_message_as_sent_subject_headers_html_text_and_links(
    admin_client, studio_data, django_assert_max_num_queries
):
    log = EmailLog.objects.filter(template="activation/welcome", to_email="ada@example.com").get()
    delivered = next(m for m in mail.outbox if m.to == ["ada@example.com"])
    # Later changes to the stored props do not change what the recipient got.
    EmailLog.objects.filter(pk=log.pk).update(props={"first_name": "Zed"})
    with django_assert_max_num_queries(3):
        response = admin_client.get(reverse("admin:emails_emaillog_change", args=[log.pk]))
    html = response.content.decode()
    sent = response.context["sent"]
    assert sent.html == delivered.alternatives[0][0] and sent.text == delivered.body
    assert sent.subject == delivered.subject == "Welcome to Hogsend — let's get you set up"
    assert '<iframe class="studio-preview" id="email-preview" sandbox=""' in html
    assert 'srcdoc="&lt;' in html  # the HTML as sent, escaped into the attribute
    assert "Zed" not in sent.html
    headers = dict(response.context["sent_headers"])
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"):
        assert headers[name] == delivered.extra_headers[name]
        assert delivered.extra_headers[name] in html.replace("&lt;", "<").replace("&gt;", ">")
    assert response.context["unsubscribe_link"] in delivered.body  # the footer's link, in the header too
    tracked = response.context["tracked_links"]
    assert tracked and all(url in delivered.alternatives[0][0] for url, _ in tracked)


def test_an_email_never_handed_to_a_provider_is_previewed_from_its_props(admin_client, studio_data):
    log = EmailLog.objects.filter(template="activation/welcome", to_email="ada@example.com").get()
    EmailLog.objects.filter(pk=log.pk).update(props={"first_name": "Zed"})
    SentMessage.objects.filter(email=log).delete()
    response = admin_client.get(reverse("admin:emails_emaillog_change", args=[log.pk]))
    assert response.context["sent"] is None
    assert "Welcome, Zed!" in response.context["preview"]["html"]  # rendered from the log's props


def test_a_template_preview_and_a_test_send_to_the_typed_address(admin_client):
    url = reverse("admin:studio_template", args=["onboarding/concierge-intro"])
    response = admin_client.get(url)
    assert "Sarah" in response.context["preview"]["html"]  # the example props
    admin_client.post(url, {"to": "operator@example.com"})
    assert [m.to for m in mail.outbox] == [["operator@example.com"]]
    log = EmailLog.objects.get(to_email="operator@example.com")
    assert (log.category, log.status, log.contact) == ("transactional", "sent", None)
    assert log.idempotency_key.startswith("studio-test:")
    assert AuditEntry.objects.get(action="template.test_send").target_id == "onboarding/concierge-intro"
    admin_client.post(url, {"to": "operator@example.com"})
    assert len(mail.outbox) == 2  # a unique key each time


def test_the_template_gallery_lists_every_template(admin_client):
    html = admin_client.get(reverse("admin:studio_templates")).content.decode()
    assert "transactional/csm-alert" in html and "activation/welcome" in html


def test_creating_an_api_key_shows_the_secret_once_and_never_the_hash(admin_client):
    response = admin_client.post(reverse("admin:contacts_apikey_add"), {"name": "web", "scopes": ["ingest"]})
    key = ApiKey.objects.get()
    secret = response.content.decode().split('<code id="api-key-secret">')[1].split("</code>")[0]
    assert secret.startswith(f"hsk_{key.prefix}_")
    assert "shown only this once" in response.content.decode()
    assert key.key_hash not in response.content.decode()
    again = admin_client.get(reverse("admin:contacts_apikey_change", args=[key.pk])).content.decode()
    assert key.key_hash not in again and "shown only this once" not in again
    assert AuditEntry.objects.get(action="api_key.create").detail["prefix"] == key.prefix


def test_revoking_keys_is_an_audited_action(admin_client):
    admin_client.post(reverse("admin:contacts_apikey_add"), {"name": "web", "scopes": ["ingest"]})
    key = ApiKey.objects.get()
    admin_client.post(
        reverse("admin:contacts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [str(key.pk)]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoke", target_id=str(key.pk)).exists()


def test_the_audit_log_is_read_only(admin_client, studio_data):
    admin_client.post(reverse("admin:studio_journey_enabled", args=["activation-welcome"]), {"enabled": "0"})
    entry = AuditEntry.objects.get()
    assert admin_client.get(reverse("admin:contacts_auditentry_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:contacts_auditentry_add")).status_code == 403
    assert admin_client.post(reverse("admin:contacts_auditentry_delete", args=[entry.pk])).status_code == 403
    page = admin_client.get(reverse("admin:contacts_auditentry_change", args=[entry.pk])).content.decode()
    assert 'name="action"' not in page  # shown, not editable


def test_the_paginator_estimates_huge_unfiltered_tables_and_caps_filtered_counts(monkeypatch, studio_data):
    from contacts import admin_base as studio_admin

    monkeypatch.setattr(studio_admin, "table_estimate", lambda table: 1_234_567)
    assert EstimatedCountPaginator(EmailLog.objects.all(), 50).count == 1_234_567
    filtered = EmailLog.objects.filter(template="activation/welcome")
    assert EstimatedCountPaginator(filtered, 50).count == filtered.count()
    monkeypatch.setattr(EstimatedCountPaginator, "COUNT_CAP", 1)
    assert EstimatedCountPaginator(EmailLog.objects.filter(category="journey"), 50).count == 1
    monkeypatch.setattr(studio_admin, "table_estimate", lambda table: 5)  # small: count for real
    assert EstimatedCountPaginator(EmailLog.objects.all(), 50).count == 1


def test_the_stored_copy_of_a_confirmation_email_keeps_no_working_confirmation_link(
    client, admin_client, django_capture_on_commit_callbacks, settings
):
    from django.core.cache import cache

    from tests.contacts.test_double_opt_in import confirm_link, submit

    cache.clear()
    settings.PUBLIC_BASE_URL = "https://mail.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        submit(client)
    [message] = mail.outbox
    link = confirm_link(message)
    sent = SentMessage.objects.get(email__category="confirmation")
    assert link not in sent.text and link not in sent.html
    assert "[confirmation link: not kept]" in sent.text
    page = admin_client.get(reverse("admin:emails_emaillog_change", args=[sent.email_id])).content.decode()
    assert link not in page
