"""The template registry: every email key, its default subject, category and required props.

Bodies are Django templates at `templates/emails/<key>/body.html` and `body.txt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class UnknownTemplate(LookupError):
    pass


@dataclass(frozen=True)
class Question:
    """A question an email asks with semantic links (see emails/answers.py).

    `choices` are (key, label) pairs; a link or the hosted page answers with a key. Without
    choices the hosted page takes free text only.
    """

    key: str
    prompt: str
    choices: tuple[tuple[str, str], ...] = ()

    def label(self, answer: str) -> str:
        return dict(self.choices).get(answer, answer)


@dataclass(frozen=True)
class EmailTemplate:
    key: str
    subject: str
    category: str = "journey"
    required_props: tuple[str, ...] = ()
    example_props: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    questions: tuple[Question, ...] = ()

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)


_templates: dict[str, EmailTemplate] = {}


def register_template(template: EmailTemplate) -> EmailTemplate:
    _templates[template.key] = template
    return template


def get_template(key: str) -> EmailTemplate:
    try:
        return _templates[key]
    except KeyError:
        raise UnknownTemplate(
            f"unknown email template {key!r}; registered: {', '.join(sorted(_templates)) or 'none'}"
        ) from None


def all_templates() -> list[EmailTemplate]:
    return sorted(_templates.values(), key=lambda t: t.key)


# The double opt-in confirmation (templates/emails/contacts/confirm/): the only template sent with
# the `confirmation` category, which is the only mail a contact awaiting confirmation may get.
CONFIRMATION_TEMPLATE = "contacts/confirm"
register_template(
    EmailTemplate(
        key=CONFIRMATION_TEMPLATE,
        subject="Please confirm your subscription",
        category="confirmation",
        required_props=("confirmation_id",),
        example_props={
            "confirmation_id": 0,
            "confirm_url": "https://example.com/forms/confirm/TOKEN/",
            "form_title": "Our newsletter",
        },
        description="Double opt-in: the link to the page where the person confirms.",
    )
)
