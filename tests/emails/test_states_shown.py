"""What the log knows is what the Studio and the API say: a send to a contact without an address
reads `skipped` with its reason, one caught in the provider call `sending`, one whose outcome a
crash made uncertain `unknown`."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from emails.models import EmailLog
from emails.services import email_send

pytestmark = pytest.mark.django_db
Status = EmailLog.Status


def test_a_send_to_a_contact_without_an_address_reads_skipped_in_the_studio_and_the_api(
    admin_client, api, make_contact
):
    contact = make_contact(user_id="cus_quiet", email="")
    log = email_send(to="", template="activation/welcome", user_id="cus_quiet", idempotency_key="quiet-1")

    page = admin_client.get(reverse("admin:emails_emaillog_change", args=[log.pk])).content.decode()
    assert '<span class="studio-pill skipped" id="email-status">skipped</span> no_email_address' in page
    assert "(no address)" in page
    contact_page = admin_client.get(reverse("admin:contacts_contact_change", args=[contact.pk])).content
    assert b'<span class="studio-pill skipped">skipped</span> no_email_address' in contact_page

    (item,) = [i for i in api.get("/v1/contacts/cus_quiet/timeline").json()["items"] if i["type"] == "email"]
    assert (item["status"], item["detail"]["reason"], item["detail"]["to"]) == (
        "skipped",
        "no_email_address",
        "",
    )


@pytest.mark.parametrize("status", [Status.SENDING, Status.UNKNOWN])
def test_a_send_in_flight_or_of_unknown_outcome_reads_as_such(admin_client, make_contact, status):
    contact = make_contact()
    log = EmailLog.objects.create(
        to_email=contact.email,
        contact=contact,
        template="activation/welcome",
        subject="Hi",
        category="journey",
        status=status,
        status_reason="outcome_unknown: …" if status == Status.UNKNOWN else "",
        idempotency_key=f"k-{status}",
        created_at=timezone.now(),
    )

    page = admin_client.get(reverse("admin:emails_emaillog_change", args=[log.pk])).content.decode()
    assert f'<span class="studio-pill {status}" id="email-status">{status}</span>' in page
    listing = admin_client.get(reverse("admin:emails_emaillog_changelist"), {"status": status})
    assert [row.pk for row in listing.context["cl"].result_list] == [log.pk]
