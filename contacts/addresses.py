"""Email addresses: the one check every address we store or send to passes, and its error."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class EmailError(ValueError):
    """A send, or a change to an address's consent, that cannot be made as asked; the message says why."""


def email_address_check(address: str) -> str:
    """The normalized address, or EmailError saying what is wrong with it."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise EmailError(f"{address!r} is not a valid email address: {error}") from None
