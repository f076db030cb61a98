"""Keys derived from user input, bounded to the columns that store them."""

from __future__ import annotations

import hashlib

MAX_KEY_LENGTH = 255  # every idempotency-key column


def bounded_key(*parts: object, limit: int = MAX_KEY_LENGTH) -> str:
    """`parts` joined with ':'; if that would not fit in `limit` characters, the first part (a
    fixed prefix such as "csm-alert") and a SHA-256 of the whole joined key instead.

    Short keys stay readable and unchanged; a long one (a 255-character user id) stays unique
    and stable, so a retry still finds the first send.
    """
    key = ":".join(str(part) for part in parts)
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{str(parts[0])[: limit - len(digest) - 8]}:sha256:{digest}"
