"""Registry entries for the shipped journeys' emails (bodies live in templates/emails/)."""

from __future__ import annotations

from emails.registry import EmailTemplate, Question, register_template
from journeys.shipped.constants import Questions, Templates

_CONTACT_EXAMPLE = {
    "user_id": "user_123",
    "email": "ada@analytical.example",
    "name": "Ada Lovelace",
    "company": "Analytical Engines",
    "activity": [{"event": "pricing.viewed", "count": 3, "last": "2026-06-18T14:55:00+00:00"}],
}

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
    EmailTemplate(
        Templates.OFFER_APPROVED,
        "An offer, just for you",
        required_props=("discount_percent",),
        example_props={"discount_percent": 25, "approved_by": "Dana"},
        description="The custom offer, sent only once a person approved it (approval gate).",
    ),
    EmailTemplate(
        Templates.OFFER_STANDARD,
        "A thank-you from us",
        required_props=("discount_percent",),
        example_props={"discount_percent": 10},
        description="The pre-approved fallback when nobody approved the custom offer in time.",
    ),
    EmailTemplate(
        Templates.TRANSACTIONAL_APPROVAL_ALERT,
        "[Approval needed] custom offer",
        category="transactional",
        required_props=("contact",),
        example_props={
            "contact": _CONTACT_EXAMPLE,
            "action": "custom-offer",
            "discount_percent": 25,
            "reason": "asked to cancel: too expensive",
            "requested_at": "2026-06-18T15:00:00+00:00",
            "timeout_days": 2,
            "api_url": "https://mail.example.com",
        },
    ),
    EmailTemplate(
        Templates.SUPPORT_DID_IT_FIX,
        "Did this fix it?",
        example_props={"ticket_id": "4711", "ticket_subject": "Export stuck at 99%"},
        description="The morning after a ticket is resolved; yes/no semantic links and a hosted answer.",
        questions=(
            Question(
                Questions.FIXED,
                "Did this fix your problem?",
                choices=(("yes", "Yes, it's fixed"), ("no", "No, not yet")),
            ),
        ),
    ),
    EmailTemplate(
        Templates.SUPPORT_REOPENED,
        "We've reopened your request",
        example_props={"ticket_id": "4711", "ticket_subject": "Export stuck at 99%", "text": "Still stuck."},
    ),
    EmailTemplate(
        Templates.COMMENTS_DIGEST,
        "New comments on your work",
        example_props={
            "comments": [
                {"author": "Grace", "text": "Love the new chart.", "on": "Q3 report"},
                {"author": "Alan", "text": "Could we add the totals?", "on": "Q3 report"},
            ],
            "count": 2,
            "more": 0,
        },
        description="One email with the comments of the last hour (the comment-digest journey).",
    ),
    EmailTemplate(
        Templates.TRANSACTIONAL_SUPPORT_REOPEN_ALERT,
        "[Support] not fixed",
        category="transactional",
        required_props=("contact",),
        example_props={
            "contact": _CONTACT_EXAMPLE,
            "ticket_id": "4711",
            "ticket_subject": "Export stuck at 99%",
            "text": "Still stuck at 99% after the update.",
        },
    ),
    EmailTemplate(
        Templates.TRANSACTIONAL_LEAD_ALERT,
        "[Lead] new lead",
        category="transactional",
        required_props=("contact",),
        example_props={
            "contact": _CONTACT_EXAMPLE,
            "lead": {"form": "demo-request", "seats": 300},
            "context": ["We need SSO for 300 seats before Q3."],
            "follow_up": False,
        },
    ),
):
    register_template(_template)
