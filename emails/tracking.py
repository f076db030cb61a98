"""First-party open and click tracking.

Links in the HTML are rewritten at send time to `/e/c/<signed email id + link index>/`; the target
is looked up in the log's own list of links, so the redirect can only lead where the email did
(no open redirect). The open pixel is `/e/o/<signed email id>/`. Likely bots and prefetchers
(known user agents, HEAD requests, hits within seconds of the send) are not counted.
Consent links (preference center, unsubscribe) are never rewritten.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.utils import timezone

from contacts.links import token_url
from emails.models import EmailLog
from emails.status import Status, email_stamp_first, email_status_advance

logger = logging.getLogger(__name__)

_OPEN_SALT = "hogsend.email.open"
_CLICK_SALT = "hogsend.email.click"
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|preview|prefetch|scanner|headless|python-requests|python-urllib|"
    r"curl/|wget/|go-http-client|okhttp|java/|libwww|httpclient|barracuda|proofpoint|mimecast|"
    r"safelinks|urldefense|symantec|trendmicro|forcepoint|microsoft office existence discovery",
    re.IGNORECASE,
)


class TrackingLinkError(LookupError):
    pass


def open_token(email_id: UUID | str) -> str:
    return signing.Signer(salt=_OPEN_SALT).sign(str(email_id))


def click_token(email_id: UUID | str, index: int) -> str:
    return signing.Signer(salt=_CLICK_SALT).sign(f"{email_id}.{index}")


def open_pixel_url(email_id: UUID | str) -> str:
    return token_url("emails:open", open_token(email_id))


def click_url(email_id: UUID | str, index: int) -> str:
    return token_url("emails:click", click_token(email_id, index))


@dataclass(frozen=True)
class TrackedHtml:
    html: str
    links: list[str]


def html_links_track(
    *, html_body: str, email_id: UUID | str, skip_prefixes: tuple[str, ...] = ()
) -> TrackedHtml:
    """Rewrite every http(s) anchor to its click URL and append the open pixel."""
    links: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3))
        if any(url.startswith(prefix) for prefix in skip_prefixes):
            return match.group(0)
        if url not in links:
            links.append(url)
        tracked = html.escape(click_url(email_id, links.index(url)), quote=True)
        return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

    body = _HREF.sub(rewrite, html_body)
    pixel = (
        f'<img src="{html.escape(open_pixel_url(email_id))}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;">'
    )
    if re.search(r"</body>", body, re.IGNORECASE):
        body = re.sub(r"</body>", lambda _: pixel + "</body>", body, count=1, flags=re.IGNORECASE)
    else:
        body += pixel
    return TrackedHtml(html=body, links=links)


def _read_open(token: str) -> str:
    try:
        return signing.Signer(salt=_OPEN_SALT).unsign(token)
    except signing.BadSignature:
        raise TrackingLinkError("bad open token") from None


def _read_click(token: str) -> tuple[str, int]:
    try:
        email_id, _, index = signing.Signer(salt=_CLICK_SALT).unsign(token).rpartition(".")
        return email_id, int(index)
    except (signing.BadSignature, ValueError):
        raise TrackingLinkError("bad click token") from None


def request_bot_reason(*, method: str, user_agent: str, log: EmailLog) -> str | None:
    """Why this hit is probably not a person (None if it looks like one)."""
    if method == "HEAD":
        return "head_request"
    if not user_agent.strip():
        return "no_user_agent"
    if _BOT_AGENTS.search(user_agent):
        return "bot_user_agent"
    window = getattr(settings, "EMAIL_TRACKING_BOT_WINDOW_SECONDS", 2.0)
    if log.sent_at and (timezone.now() - log.sent_at).total_seconds() < window:
        return "too_soon_after_send"
    return None


def _emit(log: EmailLog, *, name: str, key: str, properties: dict[str, Any]) -> None:
    """Put the engagement in the contact's event stream, where journeys can wait for it."""
    if log.contact_id is None or log.contact is None or log.contact.erased_at is not None:
        return
    from contacts.ingest import event_ingest

    try:
        event_ingest(
            name=name,
            user_id=log.contact.user_id,
            properties={
                "email_id": str(log.id),
                "template": log.template,
                "category": log.category,
                **properties,
            },
            idempotency_key=key,
            source="system",
        )
    except Exception:  # a tracking hit must still answer; the log already holds the engagement
        logger.exception("could not record %s for email %s", name, log.id)


def email_open_record(*, token: str, method: str, user_agent: str) -> bool:
    """Record an open from the pixel. Returns whether it counted (a person, not a bot)."""
    email_id = _read_open(token)
    log = EmailLog.objects.select_related("contact").filter(pk=email_id).first()
    if log is None or request_bot_reason(method=method, user_agent=user_agent, log=log):
        return False
    now = timezone.now()
    EmailLog.objects.filter(pk=log.pk).update(open_count=F("open_count") + 1)
    if email_stamp_first(email_id=log.pk, field="opened_at", at=now):
        email_status_advance(email_id=log.pk, to=Status.OPENED)
        _emit(log, name="email.opened", key=f"email.opened:{log.pk}", properties={})
    return True


def email_click_record(*, token: str, method: str, user_agent: str) -> str:
    """Resolve a click to the email's own link and record it (unless a bot). Returns the target URL."""
    email_id, index = _read_click(token)
    log = EmailLog.objects.select_related("contact").filter(pk=email_id).first()
    if log is None or not 0 <= index < len(log.links):
        raise TrackingLinkError("unknown link")
    url = log.links[index]
    if request_bot_reason(method=method, user_agent=user_agent, log=log):
        return url
    now = timezone.now()
    EmailLog.objects.filter(pk=log.pk).update(click_count=F("click_count") + 1)
    # A click proves an open, even when the images were blocked.
    email_stamp_first(email_id=log.pk, field="opened_at", at=now)
    if email_stamp_first(email_id=log.pk, field="clicked_at", at=now):
        email_status_advance(email_id=log.pk, to=Status.CLICKED)
    _emit(
        log,
        name="email.clicked",
        key=f"email.clicked:{log.pk}:{index}",
        properties={"url": url, "link_index": index},
    )
    return url
