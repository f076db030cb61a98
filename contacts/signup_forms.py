"""The signup forms this deployment ships with (HOGSEND_SIGNUP_FORM_MODULES lists modules like it)."""

from __future__ import annotations

from contacts.signup import define_signup_form

define_signup_form(
    "newsletter",
    "Our newsletter",
    description="Product news and the occasional tip, about once a month.",
    double_opt_in=True,
    ask_name=True,
    properties={"newsletter": True},
)
