"""Signed preference-center links and the contact's category choices as the page shows them.

A link carries a TimestampSigner token of the contact's id: no login, no cookie, and it expires
after PREFERENCE_LINK_MAX_AGE_DAYS. Nothing personal is in the token itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing

from contacts.categories import Category, category_allows, manageable_categories
from contacts.links import token_url
from contacts.models import Contact

_SALT = "hogsend.preferences"


class PreferenceLinkError(Exception):
    """A link we cannot honour: tampered, unknown contact. The page says so kindly."""

    status = 400
    title = "This link doesn't work"
    message = "The link may have been copied incompletely. Use the link from your most recent email."


class PreferenceLinkExpired(PreferenceLinkError):
    status = 410
    title = "This link has expired"
    message = "For your security, email preference links stop working after a while. Use the link from a more recent email."


def _max_age() -> timedelta:
    return timedelta(days=getattr(settings, "PREFERENCE_LINK_MAX_AGE_DAYS", 365))


def preference_token_make(*, contact: Contact) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(str(contact.pk))


def preference_token_read(*, token: str) -> Contact:
    try:
        contact_id = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=_max_age())
    except signing.SignatureExpired:
        raise PreferenceLinkExpired() from None
    except signing.BadSignature:
        raise PreferenceLinkError() from None
    contact = Contact.objects.filter(pk=contact_id, erased_at__isnull=True).first()
    if contact is None:
        raise PreferenceLinkError()
    return contact


def preference_center_url(*, contact: Contact, token: str | None = None) -> str:
    """`token`: one `preference_token_make` made for this contact already (an email signs one
    for both of its consent links)."""
    return token_url("preferences:center", token or preference_token_make(contact=contact))


def unsubscribe_url(*, contact: Contact, token: str | None = None) -> str:
    """The RFC 8058 one-click target: a POST here unsubscribes; a GET only shows a confirm page."""
    return token_url("preferences:unsubscribe", token or preference_token_make(contact=contact))


@dataclass(frozen=True)
class CategoryChoice:
    category: Category
    subscribed: bool


def contact_category_choices(*, contact: Contact) -> list[CategoryChoice]:
    return [
        CategoryChoice(category=c, subscribed=category_allows(contact=contact, category_id=c.id))
        for c in manageable_categories()
    ]
