"""Studio boundaries: suppression permissions, operator mail and suppressions, key secrets."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse

from contacts.models import ApiKey, Contact, Suppression
from contacts.suppressions import suppression_create
from emails.models import EmailLog

pytestmark = pytest.mark.django_db


def staff_with(client, *codenames: str):
    user = get_user_model().objects.create_user("helpdesk", password="x" * 20, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def contact_action(client, contact: Contact, action: str):
    url = reverse("admin:contacts_contact_studio_action", args=[contact.pk, action])
    return client.post(url)


def test_changing_contacts_is_not_enough_to_lift_a_complaint_suppression(client):
    contact = Contact.objects.create(user_id="ada", email="ada@example.com")
    suppression_create(email=contact.email, reason=Suppression.Reason.COMPLAINT)
    staff_with(client, "view_contact", "change_contact")

    assert contact_action(client, contact, "unsuppress").status_code == 403
    assert Suppression.objects.filter(email="ada@example.com").exists()


def test_changing_contacts_is_not_enough_to_suppress_an_address(client):
    contact = Contact.objects.create(user_id="ada", email="ada@example.com")
    staff_with(client, "view_contact", "change_contact")

    assert contact_action(client, contact, "suppress").status_code == 403
    assert not Suppression.objects.exists()


def test_the_suppression_permission_lets_the_contact_page_lift_it(client):
    contact = Contact.objects.create(user_id="ada", email="ada@example.com")
    suppression_create(email=contact.email, reason=Suppression.Reason.COMPLAINT)
    staff_with(client, "view_contact", "change_contact", "delete_suppression")

    assert contact_action(client, contact, "unsuppress").status_code == 302
    assert not Suppression.objects.exists()


def test_a_template_test_send_never_reaches_a_complaint_suppressed_address(admin_client):
    suppression_create(email="Angry@example.com", reason=Suppression.Reason.COMPLAINT)

    admin_client.post(
        reverse("admin:studio_template", args=["onboarding/concierge-intro"]), {"to": "angry@example.com"}
    )

    assert mail.outbox == []
    log = EmailLog.objects.get(to_email="angry@example.com")
    assert (log.status, log.status_reason) == (EmailLog.Status.SUPPRESSED, "suppressed:complaint")


def test_a_new_api_keys_secret_is_in_the_page_once_and_never_in_a_cookie(admin_client):
    response = admin_client.post(reverse("admin:contacts_apikey_add"), {"name": "web", "scopes": ["ingest"]})

    key = ApiKey.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<code id="api-key-secret">hsk_{key.prefix}_' in html
    secret = html.split('<code id="api-key-secret">')[1].split("</code>")[0]
    assert "no-store" in response["Cache-Control"]
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert all(secret not in morsel.value for morsel in admin_client.cookies.values())
    later = admin_client.get(reverse("admin:contacts_apikey_changelist")).content.decode()
    assert secret not in later
