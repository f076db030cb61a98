"""Field types the API schemas share."""

from __future__ import annotations

from typing import Annotated

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import AfterValidator


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


EmailAddress = Annotated[str, AfterValidator(_email_address)]
