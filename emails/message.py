"""The message builder: one email log row → the MIME message handed to the backend.

Rendered template (CSS inlined), preference links in the footer, List-Unsubscribe and
List-Unsubscribe-Post (RFC 8058), tracked links and the open pixel, a Message-ID, and the
idempotency key for providers that dedupe on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import make_msgid, parseaddr
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from contacts.categories import CONFIRMATION
from contacts.models import Contact
from emails.answers import EMAIL_ID_CONTEXT_KEY
from emails.backends import IDEMPOTENCY_ATTR
from emails.models import EmailLog, SentMessage
from emails.render import RenderedEmail, email_render


@dataclass
class BuiltEmail:
    message: EmailMultiAlternatives
    links: list[str]
    message_id: str
    secret_links: tuple[str, ...] = ()  # links not to keep in the stored copy


def _message_domain() -> str:
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return address.rpartition("@")[2] or "hogsend.local"


def email_message_build(
    *, log: EmailLog, contact: Contact | None, render: Callable[..., RenderedEmail] = email_render
) -> BuiltEmail:
    """The message for one row. `render` is `email_render` or one with its signature (a batch's,
    which renders the template once for all its rows)."""
    from contacts.preferences import preference_center_url, preference_token_make, unsubscribe_url
    from emails.tracking import html_links_track

    # Semantic links ({% answer_link %}) name the email they are in.
    context: dict[str, str] = {EMAIL_ID_CONTEXT_KEY: str(log.id)}
    headers = {"X-Hogsend-Email-Id": str(log.id)}
    consent_prefixes: tuple[str, ...] = ()
    if contact is not None:
        # Consent links go to the contact the mail is about; operator mail has none.
        token = preference_token_make(contact=contact)
        context["preferences_url"] = preference_center_url(contact=contact, token=token)
        context["unsubscribe_url"] = unsubscribe_url(contact=contact, token=token)
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        consent_prefixes = (context["preferences_url"], context["unsubscribe_url"])
    if log.category == CONFIRMATION and "confirmation_id" in log.props:
        # The link is signed at send time, so the log never holds a working confirmation link.
        from contacts.confirmation import confirmation_url

        context["confirm_url"] = confirmation_url(request_id=int(log.props["confirmation_id"]))
        consent_prefixes = (*consent_prefixes, context["confirm_url"])
    rendered = render(template=log.template, props=log.props, subject=log.subject, context=context)
    tracked = html_links_track(html_body=rendered.html, email_id=log.id, skip_prefixes=consent_prefixes)
    message_id = make_msgid(idstring=log.id.hex[:12], domain=_message_domain())
    headers["Message-ID"] = message_id
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[log.to_email],
        headers=headers,
    )
    message.attach_alternative(tracked.html, "text/html")
    # anymail: metadata comes back on webhooks; the key becomes Resend's Idempotency-Key header.
    message.metadata = {"email_id": str(log.id)}  # type: ignore[attr-defined]
    setattr(message, IDEMPOTENCY_ATTR, log.idempotency_key)
    secret = (context["confirm_url"],) if "confirm_url" in context else ()
    return BuiltEmail(message=message, links=tracked.links, message_id=message_id, secret_links=secret)


NOT_KEPT = "[confirmation link: not kept]"


def sent_message_kept(*, email_id: UUID, built: BuiltEmail) -> SentMessage:
    """The message as handed to the provider, as the Studio keeps it (confirmation links left out)."""
    message = built.message
    html = next((body for body, mimetype in message.alternatives if mimetype == "text/html"), "")
    text = message.body
    for link in built.secret_links:
        html, text = html.replace(link, NOT_KEPT), text.replace(link, NOT_KEPT)
    headers = {"From": message.from_email, "To": ", ".join(message.to), **message.extra_headers}
    return SentMessage(
        email_id=email_id,
        from_email=message.from_email,
        subject=message.subject,
        headers=headers,
        text=text,
        html=str(html),
        recorded_at=timezone.now(),
    )
