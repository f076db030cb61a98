"""A batch's messages as Django's SMTP backend puts them on the wire, generated once per shape.

The SMTP backend turns each message into bytes with the email package's generator
(`message().as_bytes()`) and parses its addresses (`sanitize_address`): about 1 ms of CPU a message,
more than the rest of a broadcast's send. A batch's messages differ only in their recipient, their
headers' values, their bodies, the Date and the MIME boundary; the subject, the sender, the
structure and each part's headers are the same. `WireShapes` generates a message of the batch
once with a stand-in for each of those values, and once more with stand-ins of other lengths, with
line breaks in the bodies: only if filling the first with the second's values gives the second's
bytes exactly (the generator passed every value through untouched: no folding, no encoding) is the
shape used, and each message's own values are then filled into its bytes.

A message whose values the generator might treat otherwise is generated the normal way: a header
value or address that is not plain printable ASCII without spaces, commas or semicolons (those
could be folded or encoded), a body line longer than 998 bytes (Django sends that part
quoted-printable), anything but one recipient and text plus alternatives. The result is the
normal path's bytes, byte for byte, but for the Date (the moment it is generated) and the MIME
boundary (random either way); tests/emails/test_wire.py compares them.

Single sends on the SMTP backend go out the same way (`smtp_wire_send`, on the sending thread's
kept session: emails.connections), their shapes kept for the process and bounded
(emails.delivery.single_wire), since a journey's sends of one template mostly share a shape.
"""

from __future__ import annotations

import random
import re
import secrets
import sys
from email.policy import compat32
from email.utils import formatdate
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import RFC5322_EMAIL_LINE_LENGTH_LIMIT, sanitize_address

# Printable ASCII but space, comma and semicolon (where compat32 folds a header): a value of this
# class goes through the generator as it is, however long.
_PLAIN = re.compile(r"[!-+\--:<-~]+\Z")
# An address sanitize_address leaves as it is: a dot-atom local part at an ASCII domain.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\Z"
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the generator writes each line end as CRLF
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))  # email.generator's boundary token


def _boundary() -> str:
    """A boundary as email.generator makes one."""
    return "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}" + "=="


_BODY = "body"
# Slots of a fixed width, short enough never to be folded (the Date; the boundary, whose header is
# folded the same way whatever it is, at its parameter).
_FIXED_WIDTH = frozenset({"date", "boundary"})


_UNSHAPED: Any = object()  # a shape not generated yet (None: one the normal path must generate)


class WireShapes:
    """`bytes_for(message)`: the bytes the SMTP backend would send for it, or None where only the
    normal path knows them; `envelope(message)`: the backend's sanitized sender and recipients."""

    def __init__(self, *, max_shapes: int | None = None) -> None:
        """`max_shapes`: a long-lived one (the single sends', emails.delivery) forgets every shape
        once it holds this many, so messages of ever new shapes cannot grow it without bound."""
        self._shapes: dict[tuple[Any, ...], list[bytes | str] | None] = {}
        self._senders: dict[tuple[str, str], str] = {}
        self.max_shapes = max_shapes

    @property
    def shapes(self) -> int:
        return len(self._shapes)

    def envelope(self, message: EmailMultiAlternatives) -> tuple[str, list[str]]:
        encoding = message.encoding or settings.DEFAULT_CHARSET
        key = (message.from_email, encoding)
        sender = self._senders.get(key)
        if sender is None:
            if self.max_shapes is not None and len(self._senders) >= self.max_shapes:
                self._senders.clear()
            sender = self._senders[key] = sanitize_address(message.from_email, encoding)
        recipients = [
            address if _PLAIN_ADDRESS.match(address) else sanitize_address(address, encoding)
            for address in message.recipients()
        ]
        return sender, recipients

    def bytes_for(self, message: EmailMultiAlternatives) -> bytes | None:
        values = _values(message)
        if values is None:
            return None
        key = _key(message, values)
        # Read once (`get`, not `in` then `[]`): the single sends' shapes are shared by the
        # sending threads, and another may clear them in between.
        shape = self._shapes.get(key, _UNSHAPED)
        if shape is _UNSHAPED:
            if self.max_shapes is not None and len(self._shapes) >= self.max_shapes:
                self._shapes.clear()
            shape = self._shapes[key] = _shape(message, values)
        if shape is None:
            return None
        try:
            return _fill(shape, values)
        except UnicodeEncodeError:  # a lone surrogate: the normal path says what is wrong with it
            return None


def smtp_wire_send(backend: Any, message: EmailMultiAlternatives, *, shapes: WireShapes) -> bool:
    """Send `message` on an open Django SMTP backend's session as its bytes from `shapes`, as the
    backend's own send would put it on the wire; False (nothing sent) where the backend is another
    one, not open, or the message one only the normal path generates. The session's failures are
    the backend's own (smtplib's, raised as they are: the backend raises them too)."""
    if type(backend) is not SMTPBackend or backend.connection is None:
        return False
    data = shapes.bytes_for(message)
    if data is None:
        return False
    sender, recipients = shapes.envelope(message)
    with backend._lock:  # as the backend's send_messages holds it
        backend.connection.sendmail(sender, recipients, data)
    return True


def _values(message: EmailMultiAlternatives) -> dict[str, str] | None:
    """The message's per-message values by slot, or None if one is not of a class the shape
    passes through untouched."""
    if (
        type(message) is not EmailMultiAlternatives
        or len(message.to) != 1
        or message.cc
        or message.bcc
        or message.reply_to
        or message.attachments
        or not all(isinstance(content, str) for content, _ in message.alternatives)
        or {name.lower() for name in message.extra_headers} & {"from", "to", "cc", "reply-to", "date"}
        or not isinstance(message.body, str)
    ):
        return None
    values = {"to": message.to[0], **{f"header:{n}": str(v) for n, v in message.extra_headers.items()}}
    if not all(_PLAIN.match(value) for value in values.values()):
        return None
    bodies = {"body": message.body, **{f"body:{i}": c for i, (c, _) in enumerate(message.alternatives)}}
    for text in bodies.values():
        # Django's own test (SafeMIMEText.set_payload): a long line makes the part quoted-printable.
        if any(
            len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
            for line in text.splitlines()
        ):
            return None
    boundary = _boundary()
    while any(f"--{boundary}" in text for text in bodies.values()):
        boundary = _boundary()
    return {
        **values,
        **bodies,
        "date": formatdate(localtime=settings.EMAIL_USE_LOCALTIME),
        "boundary": boundary,
    }


def _key(message: EmailMultiAlternatives, values: dict[str, str]) -> tuple[Any, ...]:
    """What the bytes around the values depend on: everything but the values, and whether each
    body is ASCII (its part says 7bit or 8bit)."""
    return (
        message.from_email,
        message.subject,
        message.encoding,
        message.content_subtype,
        tuple(message.extra_headers),
        tuple(mimetype for _, mimetype in message.alternatives),
        tuple(name for name, text in values.items() if name.startswith(_BODY) and text.isascii()),
    )


def _generate(message: EmailMultiAlternatives, values: dict[str, str]) -> bytes:
    """The normal path's bytes for `message` with `values` in its slots."""
    copy = EmailMultiAlternatives(
        subject=message.subject,
        body=values["body"],
        from_email=message.from_email,
        to=[values["to"]],
        headers={name: values[f"header:{name}"] for name in message.extra_headers},
    )
    copy.encoding = message.encoding
    copy.content_subtype = message.content_subtype
    for i, (_, mimetype) in enumerate(message.alternatives):
        copy.attach_alternative(values[f"body:{i}"], mimetype)
    generated = copy.message()
    generated.replace_header("Date", values["date"])
    generated.set_boundary(values["boundary"])
    return generated.as_bytes(linesep="\r\n")


def _stand_ins(values: dict[str, str], *, second: bool) -> dict[str, str]:
    """A stand-in of the same class for each value: the Date and the boundary of their own fixed
    widths, the rest of two different lengths; the second's bodies span lines."""
    stand_ins = {}
    for i, (name, value) in enumerate(values.items()):
        tag = f"hogsendwire{i}{'y' if second else 'x'}{secrets.token_hex(4)}"
        if name in ("date", "boundary"):
            stand_ins[name] = (tag + "z" * len(value))[: len(value)]
        elif name.startswith(_BODY):
            text = tag + (f"\nline\r\nline\rend{secrets.token_hex(12)}\n" if second else "")
            stand_ins[name] = text if value.isascii() else text + "\u00e9"
        else:
            stand_ins[name] = tag + (secrets.token_hex(40) if second else "")
    return stand_ins


def _shape(message: EmailMultiAlternatives, values: dict[str, str]) -> list[bytes | str] | None:
    """The bytes around the slots (literal bytes and slot names, alternating), or None if the
    generator does anything to a value but pass it through."""
    first, second = _stand_ins(values, second=False), _stand_ins(values, second=True)
    generated = _generate(message, first)
    by_bytes = {stand_in.encode(): name for name, stand_in in first.items()}
    pieces = re.split(b"(" + b"|".join(re.escape(s) for s in by_bytes) + b")", generated)
    shape: list[bytes | str] = [
        by_bytes.get(piece, piece) if i % 2 else piece for i, piece in enumerate(pieces)
    ]
    if {piece for piece in shape if isinstance(piece, str)} != set(values):
        return None
    if _fill(shape, second) != _generate(message, second):
        return None
    return shape


def _fill(shape: list[bytes | str], values: dict[str, str]) -> bytes:
    out = []
    for piece in shape:
        if isinstance(piece, bytes):
            out.append(piece)
        elif piece.startswith(_BODY):
            out.append(_LINE_BREAK.sub("\r\n", values[piece]).encode())
        elif piece in _FIXED_WIDTH:
            out.append(values[piece].encode("ascii"))
        else:
            # compat32 moves a plain value that does not fit beside its name to a line of its own
            # (and folds it no further): "Name: \r\n value".
            name = "To" if piece == "to" else piece.removeprefix("header:")
            value = values[piece]
            fits = len(name) + 2 + len(value) <= compat32.max_line_length
            out.append(value.encode("ascii") if fits else b"\r\n " + value.encode("ascii"))
    return b"".join(out)
