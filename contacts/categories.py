"""Email categories: what kind of mail a send is, and whether a contact wants that kind (consent,
so at the ground with the rest of it).

`transactional` is operator and account mail (never shown in the preference center); `journey` is
the lifecycle mail journeys send by default. Projects add their own with `register_category`.
A default-off category reaches only contacts who opted in (`Contact.category_opt_ins`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRANSACTIONAL = "transactional"
JOURNEY = "journey"
# The double opt-in confirmation: the one email a contact who has not confirmed may get.
CONFIRMATION = "confirmation"


class UnknownCategory(LookupError):
    pass


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    description: str = ""
    default_opt_in: bool = True
    # Transactional mail is not something a contact can switch off by category.
    user_manageable: bool = True
    # When a process dies during the provider call, nobody knows whether the mail went out. True:
    # send it again (at least once: a page or a receipt must not be lost). False: mark it
    # `unknown` and never send it twice (lifecycle and marketing mail).
    resend_if_uncertain: bool = False


_categories: dict[str, Category] = {}


def register_category(category: Category) -> Category:
    _categories[category.id] = category
    return category


def category_get(category_id: str) -> Category:
    try:
        return _categories[category_id]
    except KeyError:
        raise UnknownCategory(
            f"unknown email category {category_id!r}; known: {', '.join(sorted(_categories))}"
        ) from None


def category_resends_if_uncertain(category_id: str) -> bool:
    """Whether a send of this category whose outcome is unknown is sent again (an unknown one is not)."""
    category = _categories.get(category_id)
    return category is not None and category.resend_if_uncertain


def all_categories() -> list[Category]:
    return list(_categories.values())


def manageable_categories() -> list[Category]:
    return [c for c in _categories.values() if c.user_manageable]


def category_allows(*, contact: Any, category_id: str) -> bool:
    """Whether the contact's category choices let this category through (global unsubscribe aside)."""
    category = category_get(category_id)
    if not category.user_manageable:
        return True
    if category.default_opt_in:
        return category_id not in (contact.category_opt_outs or [])
    return category_id in (contact.category_opt_ins or [])


for _category in (
    Category(
        TRANSACTIONAL,
        "Account and service messages",
        "Receipts, security notices and messages from our team. Always sent.",
        default_opt_in=True,
        user_manageable=False,
        resend_if_uncertain=True,
    ),
    Category(
        CONFIRMATION,
        "Subscription confirmation",
        "The email asking you to confirm a signup. Sent only when you sign up.",
        user_manageable=False,
    ),
    Category(
        JOURNEY, "Getting started and account tips", "Onboarding and lifecycle emails about your account."
    ),
    Category("product-updates", "Product updates", "New features and important changes."),
    Category("tips", "Tips and best practices", "Occasional how-tos and ideas.", default_opt_in=False),
):
    register_category(_category)
