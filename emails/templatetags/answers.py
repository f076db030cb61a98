"""`{% answer_link "fixed" "yes" %}` and `{% answer_page_url "fixed" %}`: see emails/answers.py."""

from __future__ import annotations

from typing import Any

from django import template

from contacts.addresses import EmailError
from emails.answers import EMAIL_ID_CONTEXT_KEY, answer_key_check, answer_url

register = template.Library()


def _url(context: Any, question: str, answer: str | None) -> str:
    try:
        answer_key_check(question, what="question")
        if answer is not None:
            answer_key_check(answer, what="answer")
    except ValueError as error:
        raise EmailError(f"answer link: {error}") from None
    email_id = context.get(EMAIL_ID_CONTEXT_KEY)
    if not email_id:  # a preview: there is no email for the answer to belong to yet
        return f"#answer-{question}" + (f"-{answer}" if answer else "")
    return answer_url(email_id=email_id, question=question, answer=answer)


@register.simple_tag(takes_context=True)
def answer_link(context: Any, question: str, answer: str) -> str:
    """A link whose click (confirmed on the page it opens) answers `question` with `answer`."""
    return _url(context, question, answer)


@register.simple_tag(takes_context=True)
def answer_page_url(context: Any, question: str) -> str:
    """The hosted answer page: the question's choices and a free-text box."""
    return _url(context, question, None)
