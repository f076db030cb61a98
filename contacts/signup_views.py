"""Hosted signup forms (a page and an iframe embed) and the double opt-in confirmation page.

Posting is protected by a signed, expiring form token rendered into each form instead of Django's
CSRF cookie: the embed posts from inside another site's iframe, where browsers withhold that cookie
as third-party. A submission without a token we issued for this form in the last
SIGNUP_FORM_TOKEN_MAX_AGE_HOURS is refused. The confirmation page is an ordinary same-origin page
with Django's CSRF check; its GET never changes anything.
"""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from contacts.confirmation import ConfirmationLinkError, confirmation_token_read, max_age
from contacts.consent import ConsentVia, Source, request_ip
from contacts.services import contact_confirm
from contacts.signup import SignupForm, SignupRateLimited, signup_form_get, signup_rate_check, signup_submit

logger = logging.getLogger(__name__)
_FORM_SALT = "hogsend.signup-form"


class SignupFields(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        error_messages={
            "required": "Enter your email address.",
            "invalid": "Enter a valid email address, like ada@example.com.",
            "max_length": "An email address has at most 254 characters.",
        },
    )
    name = forms.CharField(label="First name", max_length=100, required=False)
    # The honeypot: hidden from people by CSS, filled in by bots that fill in everything.
    website = forms.CharField(required=False)
    form_token = forms.CharField(required=False)


def _form_token(form: SignupForm) -> str:
    return signing.TimestampSigner(salt=_FORM_SALT).sign(form.slug)


def _form_token_ok(form: SignupForm, token: str) -> bool:
    try:
        value = signing.TimestampSigner(salt=_FORM_SALT).unsign(
            token, max_age=settings.SIGNUP_FORM_TOKEN_MAX_AGE_HOURS * 3600
        )
    except signing.BadSignature:
        return False
    return value == form.slug


def _public(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _render(
    request: HttpRequest, form: SignupForm, embed: bool, status: int = 200, **context: Any
) -> HttpResponse:
    template = "signup/embed.html" if embed else "signup/page.html"
    response = render(
        request,
        template,
        {"form": form, "embed": embed, "form_token": _form_token(form), **context},
        status=status,
    )
    if embed:
        ancestors = " ".join(form.embed_origins) if form.embed_origins else "*"
        response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return _public(response)


def _signup(request: HttpRequest, slug: str, embed: bool) -> HttpResponse:
    form = signup_form_get(slug)
    if form is None:
        return _public(
            render(
                request,
                "preferences/invalid.html",
                {"title": "No such form", "message": f"There is no signup form called {slug!r}."},
                status=404,
            )
        )
    if request.method != "POST":
        done = request.GET.get("submitted") == "1"
        return _render(request, form, embed, fields=SignupFields(), submitted=done)
    fields = SignupFields(request.POST)
    if not fields.is_valid():
        return _render(request, form, embed, status=400, fields=fields)
    if not _form_token_ok(form, fields.cleaned_data["form_token"]):
        fresh = SignupFields(
            initial={"email": fields.cleaned_data["email"], "name": fields.cleaned_data["name"]}
        )
        return _render(
            request,
            form,
            embed,
            status=400,
            fields=fresh,
            problem="This form had expired, or was not sent from this page. Please submit it again.",
        )
    if fields.cleaned_data["website"]:
        logger.info("signup form %s: honeypot filled in; nothing stored", form.slug)
        return HttpResponseRedirect(f"{request.path}?submitted=1")
    try:
        signup_rate_check(ip=request_ip(request))
    except SignupRateLimited as limited:
        response = _render(
            request,
            form,
            embed,
            status=429,
            fields=fields,
            problem="Too many signups from your network just now. Please try again in an hour.",
        )
        response["Retry-After"] = str(limited.retry_after)
        return response
    signup_submit(
        form=form,
        email=fields.cleaned_data["email"],
        name=fields.cleaned_data["name"] if form.ask_name else "",
        via=ConsentVia.from_request(request, source=Source.SIGNUP_FORM, form=form.slug),
    )
    return HttpResponseRedirect(f"{request.path}?submitted=1")


@csrf_exempt  # the signed form token stands in for the CSRF cookie (see the module docstring)
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def signup_page(request: HttpRequest, slug: str) -> HttpResponse:
    return _signup(request, slug, embed=False)


@csrf_exempt
@xframe_options_exempt  # framed by other sites; CSP frame-ancestors names which ones
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def signup_embed(request: HttpRequest, slug: str) -> HttpResponse:
    return _signup(request, slug, embed=True)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET (what a mail scanner's prefetch does) only shows the button; the button's POST confirms."""
    try:
        confirmation = confirmation_token_read(token=token)
        if request.method == "POST":
            via = ConsentVia.from_request(request, source=Source.CONFIRMATION_LINK, token=token)
            outcome = contact_confirm(request=confirmation, via=via)
            return _public(
                render(
                    request, "signup/confirmed.html", {"contact": outcome.contact, "changed": outcome.changed}
                )
            )
    except ConfirmationLinkError as error:
        return _public(
            render(
                request,
                "preferences/invalid.html",
                {"title": error.title, "message": error.message},
                status=error.status,
            )
        )
    context = {
        "token": token,
        "contact": confirmation.contact,
        "valid_hours": int(max_age().total_seconds() // 3600),
    }
    return _public(render(request, "signup/confirm.html", context))
