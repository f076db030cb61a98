"""Rendering an email template: subject, text and HTML (CSS inlined).

Split from the send pipeline so the message builder can render without importing the pipeline
(emails.services -> emails.tasks -> emails.delivery -> emails.message -> emails.render, one way).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import css_inline
from django.conf import settings
from django.template import TemplateDoesNotExist
from django.template.backends.django import DjangoTemplates
from django.template.loader import render_to_string

from contacts.addresses import EmailError
from emails.registry import get_template


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


_inliner = css_inline.CSSInliner(keep_style_tags=False)


@functools.cache
def _text_templates() -> DjangoTemplates:
    """The project's template dirs without HTML autoescaping: the text part is not HTML, and
    "O'Brien" must not arrive as "O&#x27;Brien"."""
    base = settings.TEMPLATES[0]
    return DjangoTemplates(
        {
            "NAME": "email-text",
            "DIRS": base.get("DIRS", []),
            "APP_DIRS": True,
            "OPTIONS": {"autoescape": False},
        }
    )


def email_render(
    *, template: str, props: dict[str, Any], subject: str | None = None, context: dict[str, Any] | None = None
) -> RenderedEmail:
    """Render subject, text and HTML (CSS inlined). `context` adds the consent links at send time;
    previews may leave it out and get a footer without them."""
    spec = get_template(template)
    missing = [name for name in spec.required_props if props.get(name) in (None, "")]
    if missing:
        raise EmailError(f"template {template!r} needs props: {', '.join(missing)}")
    full_context = {**props, "props": props, **(context or {})}
    try:
        html = render_to_string(f"emails/{template}/body.html", full_context)
    except TemplateDoesNotExist:
        raise EmailError(f"template {template!r} has no templates/emails/{template}/body.html") from None
    text = _text_templates().get_template(f"emails/{template}/body.txt").render(full_context)
    return RenderedEmail(
        subject=subject or spec.subject, text=text.strip() + "\n", html=_inliner.inline(html)
    )
