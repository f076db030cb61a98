"""The shipped broadcast template: an announcement with a headline, a paragraph and a button."""

from __future__ import annotations

from emails.registry import EmailTemplate, register_template

ANNOUNCEMENT = "broadcasts/announcement"

register_template(
    EmailTemplate(
        ANNOUNCEMENT,
        "News from Hogsend",
        category="product-updates",
        required_props=("headline",),
        example_props={
            "headline": "Dark mode is here",
            "body": "Every page of the app now follows your system's theme.",
            "cta_url": "https://example.com/changelog",
            "cta_label": "See what's new",
        },
        description="A one-off announcement to an audience (a broadcast).",
    )
)
