"""Field types the API schemas share."""

from __future__ import annotations

import re
from typing import Annotated

import email_validator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import AfterValidator, Field


def _email_address(value: str) -> str:
    """A syntactically valid address, its domain lower-cased; deliverability is the provider's
    business. Django's validator, not `email_validator`: ingest checks thousands of addresses a
    second, and the IDNA tables behind `email_validator` cost a millisecond or more per address."""
    value = value.strip()
    if len(value) > 254:
        raise ValueError(f"an email address has at most 254 characters; got {len(value)}")
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError(f"{value[:80]!r} is not a valid email address, e.g. ada@example.com") from None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


# Declared as `format: email` in the OpenAPI document, with the part of Django's rule that format
# leaves open (a top-level domain of two or more letters, or an xn-- label), so a generated client
# refuses what this refuses.
_ADDRESS = r"[^@]+@.+\.([A-Za-z\u00a1-\uffff-]{2,63}|[xX][nN]--[A-Za-z0-9]{1,59})\.?$"
EMAIL_PATTERN = rf"^{_ADDRESS}"
EmailAddress = Annotated[
    str,
    AfterValidator(_email_address),
    Field(json_schema_extra={"format": "email", "maxLength": 254, "pattern": EMAIL_PATTERN}),
]


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# An address the send pipeline will mail: also not on a special-use domain (`.test`, `.invalid`,
# `localhost`, ...), which the pipeline refuses (email_validator's list). JSON Schema patterns have
# no flags, hence the spelled-out cases.
_RESERVED = "|".join(_any_case(name) for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
MAILABLE_PATTERN = rf"^(?!.*@(.*\.)?({_RESERVED})\.?$){_ADDRESS}"
MailableAddress = Annotated[
    str,
    AfterValidator(_email_address),
    Field(json_schema_extra={"format": "email", "maxLength": 254, "pattern": MAILABLE_PATTERN}),
]
