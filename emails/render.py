"""Rendering an email template: subject, text and HTML (CSS inlined).

Split from the send pipeline so the message builder can render without importing the pipeline
(emails.services -> emails.tasks -> emails.delivery -> emails.message -> emails.render, one way).
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import css_inline
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
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


# What HTML escaping would change: a value holding one of these is rendered for its row alone.
_ESCAPED = re.compile(r"""[&<>"']""")


class RenderOnce:
    """`email_render` for many rows of one template and props: rendered (CSS inlined) once with a
    stand-in for each per-recipient value (the consent links, the email id), which each row fills in.

    A template is rendered that way only if it passes its values through untouched: rendered twice
    with stand-ins of different lengths, the second must be the first with the stand-ins swapped.
    One that does anything else with them (a filter, a test of their length) is rendered per row,
    as is a row whose values HTML escaping would change.
    """

    def __init__(self, *, max_shapes: int | None = None) -> None:
        """`max_shapes`: a long-lived one (the single sends', emails.delivery) forgets every shape
        once it holds this many, so props that differ per row cannot grow it without bound."""
        self._shapes: dict[tuple[Any, ...], tuple[dict[str, str], RenderedEmail] | None] = {}
        self.max_shapes = max_shapes

    @property
    def shapes(self) -> int:
        return len(self._shapes)

    def __call__(
        self,
        *,
        template: str,
        props: dict[str, Any],
        subject: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> RenderedEmail:
        values = {name: str(value) for name, value in (context or {}).items()}
        if any(_ESCAPED.search(value) for value in values.values()):
            return email_render(template=template, props=props, subject=subject, context=context)
        key = (
            template,
            subject,
            tuple(sorted(values)),
            json.dumps(props, sort_keys=True, cls=DjangoJSONEncoder),
        )
        if key not in self._shapes:
            if self.max_shapes is not None and len(self._shapes) >= self.max_shapes:
                self._shapes.clear()
            self._shapes[key] = self._shape(
                template=template, props=props, subject=subject, names=sorted(values)
            )
        shape = self._shapes[key]
        if shape is None:
            return email_render(template=template, props=props, subject=subject, context=context)
        stand_ins, rendered = shape
        return RenderedEmail(
            subject=_fill(rendered.subject, stand_ins, values),
            text=_fill(rendered.text, stand_ins, values),
            html=_fill(rendered.html, stand_ins, values),
        )

    @staticmethod
    def _shape(
        *, template: str, props: dict[str, Any], subject: str | None, names: list[str]
    ) -> tuple[dict[str, str], RenderedEmail] | None:
        first = {name: f"hogsendslot{i}x{secrets.token_hex(8)}" for i, name in enumerate(names)}
        second = {name: f"hogsendslot{i}y{secrets.token_hex(13)}" for i, name in enumerate(names)}
        one = email_render(template=template, props=props, subject=subject, context=first)
        two = email_render(template=template, props=props, subject=subject, context=second)
        for part in ("subject", "text", "html"):
            if _fill(getattr(one, part), first, second) != getattr(two, part):
                return None
        return first, one


def _fill(text: str, stand_ins: dict[str, str], values: dict[str, str]) -> str:
    for name, stand_in in stand_ins.items():
        text = text.replace(stand_in, values[name])
    return text
