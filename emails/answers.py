"""Semantic links and hosted answers: an email asks a question, a click answers it.

In a template, `{% load answers %}` then `{% answer_link "fixed" "yes" %}` is a signed link that
answers the question `fixed` with `yes`; `{% answer_page_url "fixed" %}` is a hosted page with the
question's choices and a free-text box (a question declared without choices takes free text only).
Declare the question on the template (`EmailTemplate(questions=(Question(...),))`) for its prompt
and choice labels.

A GET only ever shows a page: mail scanners and prefetchers follow links, people press buttons.
The person's POST from that page becomes one `email.answered` event of the email's contact, with
`question`, `answer`, `text`, `email_id` and `template`, where journeys can wait for it. One answer
per email and question: the event's idempotency key is the email and the question, so a second
click or submission stores nothing and the page shows the answer already given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.urls import reverse

from contacts.models import Contact, Event
from emails.models import EmailLog
from emails.registry import Question, UnknownTemplate, get_template

ANSWER_EVENT = "email.answered"
MAX_TEXT_LENGTH = 2000
# The template context key the message builder fills in, so links know which email they are in.
EMAIL_ID_CONTEXT_KEY = "hogsend_email_id"
_SALT = "hogsend.email.answer"
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class AnswerLinkError(Exception):
    """A link we cannot honour (tampered, cut short, its email or contact gone). Nothing is stored."""

    status = 400
    title = "This link doesn't work"
    message = "The link may have been copied incompletely. Use the link from the email itself."


class AnswerLinkExpired(AnswerLinkError):
    status = 410
    title = "This link has expired"
    message = "Answer links stop working after a while. Reply to the email instead, and we'll see it."


class AnswerInvalid(ValueError):
    """A submission the page cannot take as it is; the message says what to change."""


def answer_key_check(value: str, *, what: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-64 lowercase letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value


def answer_token_make(*, email_id: UUID | str, question: str, answer: str | None = None) -> str:
    payload: dict[str, Any] = {"e": str(email_id), "q": answer_key_check(question, what="question")}
    if answer is not None:
        payload["a"] = answer_key_check(answer, what="answer")
    return signing.dumps(payload, salt=_SALT, compress=True)


def answer_url(*, email_id: UUID | str, question: str, answer: str | None = None) -> str:
    token = answer_token_make(email_id=email_id, question=question, answer=answer)
    return settings.PUBLIC_BASE_URL + reverse("emails:answer", args=[token])


def answer_idempotency_key(*, email_id: UUID | str, question: str) -> str:
    return f"{ANSWER_EVENT}:{email_id}:{question}"


@dataclass(frozen=True)
class AnswerRequest:
    """What a link asks: the email it came in, the question, and the answer it carries (if any)."""

    email_id: UUID
    template: str
    subject: str
    contact: Contact
    question: str
    answer: str | None
    declared: Question | None
    recorded: dict[str, Any] | None  # the answer already given, if any

    @property
    def prompt(self) -> str:
        return self.declared.prompt if self.declared else self.subject

    @property
    def choices(self) -> tuple[tuple[str, str], ...]:
        return self.declared.choices if self.declared else ()

    def label(self, answer: str) -> str:
        return self.declared.label(answer) if self.declared else answer

    @property
    def answer_label(self) -> str:
        return self.label(self.answer) if self.answer else ""


def _max_age() -> timedelta:
    return timedelta(days=getattr(settings, "ANSWER_LINK_MAX_AGE_DAYS", 90))


def answer_request_read(*, token: str) -> AnswerRequest:
    """Resolve a link's token, or raise AnswerLinkError saying why it cannot be honoured."""
    try:
        payload = signing.loads(token, salt=_SALT, max_age=_max_age())
        email_id = UUID(payload["e"])
        question = answer_key_check(payload["q"], what="question")
        answer = payload.get("a")
        if answer is not None:
            answer_key_check(answer, what="answer")
    except signing.SignatureExpired:
        raise AnswerLinkExpired() from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise AnswerLinkError() from None
    log = (
        EmailLog.objects.select_related("contact")
        .filter(pk=email_id)
        .only("id", "template", "subject", "contact")
        .first()
    )
    if log is None or log.contact is None or log.contact.erased_at is not None:
        raise AnswerLinkError()
    try:
        declared = get_template(log.template).question(question)
    except UnknownTemplate:
        declared = None
    recorded = (
        Event.objects.filter(idempotency_key=answer_idempotency_key(email_id=email_id, question=question))
        .values_list("properties", flat=True)
        .first()
    )
    return AnswerRequest(
        email_id=email_id,
        template=log.template,
        subject=log.subject,
        contact=log.contact,
        question=question,
        answer=answer,
        declared=declared,
        recorded=recorded,
    )


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class AnswerOutcome:
    properties: dict[str, Any]
    created: bool  # False: the question was already answered; `properties` are that first answer


def answer_record(*, request: AnswerRequest, answer: str | None, text: str) -> AnswerOutcome:
    """Store the person's answer as one `email.answered` event (at most one per email and question).

    The link's own answer wins over the form's; otherwise the answer must be one of the declared
    choices, and a question without choices needs text.
    """
    from contacts.ingest import IngestError, event_ingest

    text = (text or "").strip()
    if "\x00" in text or not _storable(text):
        raise AnswerInvalid(
            "The text contains a character we cannot store (a NUL or an unpaired surrogate); "
            "remove it and send again."
        )
    if len(text) > MAX_TEXT_LENGTH:
        raise AnswerInvalid(f"Please keep it under {MAX_TEXT_LENGTH} characters (this is {len(text)}).")
    chosen = request.answer
    if chosen is None and request.choices:
        keys = [key for key, _ in request.choices]
        if answer not in keys:
            raise AnswerInvalid("Choose one of: " + ", ".join(label for _, label in request.choices) + ".")
        chosen = answer
    if chosen is None and not text:
        raise AnswerInvalid("Write your answer in the box, then send it.")
    try:
        result = event_ingest(
            name=ANSWER_EVENT,
            user_id=request.contact.user_id,
            properties={
                "question": request.question,
                "answer": chosen or "",
                "text": text,
                "email_id": str(request.email_id),
                "template": request.template,
            },
            idempotency_key=answer_idempotency_key(email_id=request.email_id, question=request.question),
            source=Event.Source.SYSTEM,
        )
    except IngestError as error:  # ingest's messages say what is wrong with the input
        raise AnswerInvalid(f"We could not store this answer: {error}") from None
    return AnswerOutcome(properties=result.event.properties, created=result.created)
