"""The page behind every semantic link: a GET shows it, only the person's POST answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from emails.answers import (
    MAX_TEXT_LENGTH,
    AnswerInvalid,
    AnswerLinkError,
    AnswerRequest,
    answer_record,
    answer_request_read,
)


def _page(request: HttpRequest, name: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, f"answers/{name}.html", context, status=status)
    # The token must not leak to other sites, but the page's own POST needs a real Origin for CSRF.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _answered(
    request: HttpRequest, ask: AnswerRequest, properties: dict[str, Any], *, fresh: bool
) -> HttpResponse:
    return _page(
        request,
        "answered",
        {
            "ask": ask,
            "answer_label": ask.label(properties.get("answer") or ""),
            "text": properties.get("text") or "",
            "fresh": fresh,
        },
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def answer_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        ask = answer_request_read(token=token)
    except AnswerLinkError as error:
        return _page(
            request, "invalid", {"title": error.title, "message": error.message}, status=error.status
        )
    if ask.recorded is not None:
        return _answered(request, ask, ask.recorded, fresh=False)
    context: dict[str, Any] = {
        "ask": ask,
        "max_length": MAX_TEXT_LENGTH,
        "error": "",
        "text": "",
        "chosen": "",
    }
    if request.method == "POST":
        text, chosen = request.POST.get("text", ""), request.POST.get("answer") or None
        try:
            outcome = answer_record(request=ask, answer=chosen, text=text)
        except AnswerInvalid as error:
            context.update(error=str(error), text=text, chosen=chosen or "")
            return _page(request, "ask", context, status=400)
        return _answered(request, ask, outcome.properties, fresh=outcome.created)
    return _page(request, "ask", context)
