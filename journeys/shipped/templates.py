"""Registry entries for the shipped journeys' emails (bodies live in templates/emails/)."""

from __future__ import annotations

from emails.registry import EmailTemplate, register_template
from journeys.shipped.constants import Templates

for _template in (
    EmailTemplate(
        Templates.ACTIVATION_WELCOME,
        "Welcome — let's get you set up",
        example_props={"first_name": "Ada"},
        description="Sent the moment a user signs up.",
    ),
    EmailTemplate(Templates.ACTIVATION_ADVANCED, "Nice work — here's what to try next"),
    EmailTemplate(Templates.ACTIVATION_NUDGE, "You haven't tried the key feature yet"),
    EmailTemplate(
        Templates.CHURN_PAYMENT_FAILED,
        "Your payment didn't go through",
        example_props={"grace_period_days": 2},
    ),
    EmailTemplate(
        Templates.CONVERSION_WINBACK_OFFER,
        "You left something behind",
        example_props={"discount_percent": 10},
    ),
    EmailTemplate(
        Templates.ONBOARDING_CONCIERGE_INTRO,
        "Next steps for your rollout",
        required_props=("csm_name",),
        example_props={"csm_name": "Sarah"},
    ),
    EmailTemplate(Templates.ONBOARDING_ENTERPRISE_WELCOME, "Getting your team set up"),
    EmailTemplate(
        Templates.TRANSACTIONAL_CSM_ALERT,
        "[CSM] new enterprise signup",
        category="transactional",
        required_props=("customer_email", "customer_id"),
        example_props={
            "customer_email": "cto@bigco.example",
            "customer_id": "user_123",
            "seats": 250,
            "reminder": False,
            "requested_at": "2026-06-18T15:00:00+00:00",
        },
    ),
):
    register_template(_template)
