"""Who is held out of a send to measure mail's effect: a journey's holdout and the global control group.

A journey's holdout, and whether its run is in the control group, are decided when the run
enrolls; the send only carries the answers (`held_out`, `control_group`). The control group is a share of all contacts (`HOGSEND_CONTROL_GROUP_PERCENT`),
picked by a hash of the contact's id and `HOGSEND_CONTROL_GROUP_SALT`, so membership is the same
in every process and changes only when the salt does. Both hold back marketing mail only: a
transactional or confirmation email (a category a contact cannot switch off) always goes out.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings

from contacts.categories import category_get

HELD_OUT = "held_out"
CONTROL_GROUP = "control_group"


def in_control_group(*, contact_id: Any) -> bool:
    """Whether the contact is in the global control group."""
    percent = float(getattr(settings, "HOGSEND_CONTROL_GROUP_PERCENT", 0) or 0)
    if percent <= 0 or contact_id is None:
        return False
    salt = getattr(settings, "HOGSEND_CONTROL_GROUP_SALT", "")
    digest = hashlib.sha256(f"{salt}\x1f{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < percent / 100


def send_hold_reason(
    *, contact: Any, category: str, held_out: bool, control_group: bool | None = None
) -> str | None:
    """Why a marketing send is held back for measurement (`held_out`, `control_group`), or None.
    `control_group`: what the run recorded at enrollment (a journey's send); None where no run
    decided it (a broadcast, an API send), which asks the contact's hash now."""
    if not category_get(category).user_manageable:  # transactional and confirmation mail
        return None
    if held_out:
        return HELD_OUT
    if control_group is not None:
        return CONTROL_GROUP if control_group else None
    if contact is not None and in_control_group(contact_id=contact.pk):
        return CONTROL_GROUP
    return None
