"""Public consent pages. A GET never changes consent (mail scanners follow links); changes are POSTs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from contacts import services
from contacts.consent import ConsentVia, Source
from contacts.models import Contact
from contacts.preferences import PreferenceLinkError, contact_category_choices, preference_token_read

_SAVED_MESSAGES = {
    "saved": "Your email preferences are saved.",
    "unsubscribed": "You're unsubscribed from all our emails.",
    "resubscribed": "Welcome back — you're subscribed again.",
}


def _consent_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the token to a contact, or answer with a friendly 400/410 page; keep the token
    out of caches and Referer headers."""

    @wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        try:
            contact = preference_token_read(token=token)
        except PreferenceLinkError as error:
            response = render(
                request,
                "preferences/invalid.html",
                {"title": error.title, "message": error.message},
                status=error.status,
            )
        else:
            response = view(request, token, contact)
        # same-origin, not no-referrer: the token must not leak to other sites, but the page's own
        # form POSTs need a real Origin header for CSRF checks ("no-referrer" sends Origin: null).
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex"
        return response

    return never_cache(wrapper)


@require_http_methods(["GET", "HEAD", "POST"])
@_consent_page
def preference_center(request: HttpRequest, token: str, contact: Contact) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action", "save")
        via = ConsentVia.from_request(request, source=Source.PREFERENCE_CENTER, token=token)
        if action == "unsubscribe_all":
            services.contact_unsubscribe(contact=contact, via=via)
            done = "unsubscribed"
        elif action == "resubscribe":
            services.contact_resubscribe(contact=contact, via=via)
            done = "resubscribed"
        else:
            services.contact_preferences_save(
                contact=contact, subscribed=request.POST.getlist("categories"), via=via
            )
            done = "saved"
        return HttpResponseRedirect(f"{request.path}?done={done}")
    context: dict[str, Any] = {
        "contact": contact,
        "choices": contact_category_choices(contact=contact),
        "notice": _SAVED_MESSAGES.get(request.GET.get("done", "")),
    }
    return render(request, "preferences/center.html", context)


@csrf_exempt  # RFC 8058: the mail client POSTs with no cookie and no page; the signed token authorizes
@require_http_methods(["GET", "HEAD", "POST"])
@_consent_page
def unsubscribe(request: HttpRequest, token: str, contact: Contact) -> HttpResponse:
    """POST (one-click, RFC 8058, or the button on the page) unsubscribes; GET only asks."""
    if request.method == "POST":
        # A mail client's RFC 8058 POST carries this body; the page's own button does not.
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        source = Source.ONE_CLICK if one_click else Source.UNSUBSCRIBE_PAGE
        services.contact_unsubscribe(
            contact=contact, via=ConsentVia.from_request(request, source=source, token=token)
        )
        return render(request, "preferences/unsubscribed.html", {"token": token, "contact": contact})
    return render(request, "preferences/unsubscribe_confirm.html", {"token": token, "contact": contact})
