"""Hosted signup forms: their definitions (in code) and what a submission does.

Forms are defined in code, like journeys and webhook sources: `define_signup_form(...)` in a module
named in `HOGSEND_SIGNUP_FORM_MODULES`. A form's slug is part of public URLs and of embed snippets
pasted into other sites, and its consent wording is a legal text: both belong in review and version
control, not in a field anyone in the Studio can edit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from contacts.confirmation import confirmation_request
from contacts.consent import ConsentVia, Kind, consent_record
from contacts.models import ConsentChange, Contact, Event

logger = logging.getLogger(__name__)
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SUBMITTED_EVENT = "form.submitted"


class SignupFormError(ValueError):
    pass


@dataclass(frozen=True)
class SignupForm:
    slug: str
    title: str
    description: str = ""
    # Double opt-in: the contact gets a confirmation email and nothing else until it confirms.
    double_opt_in: bool = True
    ask_name: bool = False
    button: str = "Subscribe"
    # The consent text shown under the button (what the person agrees to).
    consent_text: str = "We'll email you about this. Every email has a link to unsubscribe."
    # Set on the contact at signup, e.g. {"newsletter": True}.
    properties: dict[str, Any] = field(default_factory=dict)
    # Origins that may show the embed in an iframe (CSP frame-ancestors); empty means any site.
    embed_origins: tuple[str, ...] = ()


_forms: dict[str, SignupForm] = {}
_loaded = False


def define_signup_form(slug: str, title: str, **options: Any) -> SignupForm:
    """Register a hosted form at /forms/<slug>/ (and /forms/<slug>/embed/ for an iframe)."""
    if not SLUG.match(slug) or slug == "confirm":
        raise SignupFormError(
            f"form slug {slug!r} must be lower-case letters, digits and dashes (and not 'confirm')"
        )
    for origin in options.get("embed_origins", ()):
        if not re.match(r"^https?://[^/\s]+$", origin):
            raise SignupFormError(f"embed origin {origin!r} must look like https://example.com (no path)")
    form = SignupForm(slug=slug, title=title, **options)
    _forms[slug] = form
    return form


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in settings.HOGSEND_SIGNUP_FORM_MODULES:
            import_module(module)
        _loaded = True


def signup_form_get(slug: str) -> SignupForm | None:
    _load()
    return _forms.get(slug)


def signup_forms() -> list[SignupForm]:
    _load()
    return sorted(_forms.values(), key=lambda f: f.slug)


# --- bots: a per-address resend limit and a per-IP submission limit ------------------------------


class SignupRateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many signups from this address; retry after {retry_after} seconds")
        self.retry_after = retry_after


def signup_rate_check(*, ip: str | None) -> None:
    """Count one submission from this IP (SIGNUP_RATE_LIMIT_PER_HOUR, shared in Redis). When the
    cache cannot answer, the submission goes on (logged): the resend limit still holds per address."""
    limit = settings.SIGNUP_RATE_LIMIT_PER_HOUR
    if not limit or not ip:
        return
    window = int(timezone.now().timestamp()) // 3600
    key = f"hogsend:signup:{ip}:{window}"
    try:
        cache.add(key, 0, timeout=3600)
        count = cache.incr(key)
    except Exception as error:
        logger.warning("signup rate limit not checked: the cache does not answer (%s)", error)
        return
    if count > limit:
        raise SignupRateLimited(retry_after=3600 - int(timezone.now().timestamp()) % 3600)


def _recently_asked(email: str) -> bool:
    """Whether this address was sent a confirmation within SIGNUP_CONFIRMATION_RESEND_MINUTES: a
    form cannot be used to flood someone's inbox."""
    since = timezone.now() - timedelta(minutes=settings.SIGNUP_CONFIRMATION_RESEND_MINUTES)
    return ConsentChange.objects.filter(
        email=email, kind=Kind.CONFIRMATION_REQUESTED, occurred_at__gte=since
    ).exists()


# --- a submission --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignupOutcome:
    contact: Contact
    # What happened, for tests and logs; the page says the same thing in every case, so the form
    # never tells a stranger whether an address is already known.
    action: str  # "confirmation_sent" | "subscribed" | "already_subscribed" | "recently_asked"


def signup_submit(*, form: SignupForm, email: str, name: str = "", via: ConsentVia) -> SignupOutcome:
    """A valid submission of a hosted form.

    1. The contact is the one with this address (not erased), else a new one keyed by the address.
    2. A contact that is unsubscribed, or awaiting confirmation, or new on a double opt-in form is
       asked to confirm (at most one email per address per SIGNUP_CONFIRMATION_RESEND_MINUTES); a
       form never resubscribes an address without its owner's confirmation. A new contact on a
       single opt-in form is subscribed at once (a ledger row says so).
    3. `form.submitted` is stored for the contact through ingest, in the same transaction.
    """
    from contacts.ingest import event_ingest

    address = email.strip()
    lowered = address.lower()
    properties = {**form.properties, **({"name": name} if name else {})}
    with transaction.atomic():
        contact = (
            Contact.objects.select_for_update()
            .filter(email__iexact=address, erased_at__isnull=True)
            .order_by("created_at")
            .first()
        )
        created = contact is None
        if contact is None:
            contact, created = Contact.objects.get_or_create(
                user_id=lowered, defaults={"email": address, "properties": properties}
            )
        elif properties and {**contact.properties, **properties} != contact.properties:
            contact.properties = {**contact.properties, **properties}
            contact.save(update_fields=["properties", "updated_at"])
        must_confirm = contact.unsubscribed_at is not None or contact.awaiting_confirmation
        if created and form.double_opt_in:
            must_confirm = True
        if must_confirm:
            if _recently_asked(lowered):
                action = "recently_asked"
            else:
                confirmation_request(contact=contact, via=via, form=form.slug, at_once=True)
                action = "confirmation_sent"
        elif created:
            consent_record(contact=contact, kind=Kind.SUBSCRIBED, via=via, detail={"form": form.slug})
            action = "subscribed"
        else:
            action = "already_subscribed"
        event_ingest(
            name=SUBMITTED_EVENT,
            user_id=contact.user_id,
            email=address,
            properties={"form": form.slug, "doubleOptIn": form.double_opt_in},
            source=Event.Source.SYSTEM,
        )
    return SignupOutcome(contact=contact, action=action)
