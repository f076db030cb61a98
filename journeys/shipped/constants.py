"""Event names and template keys the shipped journeys use: one place, no magic strings."""

from __future__ import annotations


class Events:
    USER_CREATED = "user.created"
    USER_SIGNED_UP = "user.signed_up"
    USER_DELETED = "user.deleted"
    USER_ACTIVATED = "user.activated"
    FEATURE_USED = "feature.used"
    SETUP_COMPLETED = "setup.completed"
    TRIAL_STARTED = "trial.started"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    CHECKOUT_ABANDONED = "checkout.abandoned"
    CHECKOUT_COMPLETED = "checkout.completed"
    CSM_ASSIGNMENT_REQUESTED = "csm.assignment_requested"
    CSM_CONTACTED = "csm.contacted"
    MEETING_BOOKED = "meeting.booked"


class Templates:
    ACTIVATION_WELCOME = "activation/welcome"
    ACTIVATION_ADVANCED = "activation/advanced"
    ACTIVATION_NUDGE = "activation/nudge"
    CHURN_PAYMENT_FAILED = "churn-payment-failed"
    CONVERSION_WINBACK_OFFER = "conversion-winback-offer"
    ONBOARDING_CONCIERGE_INTRO = "onboarding/concierge-intro"
    ONBOARDING_ENTERPRISE_WELCOME = "onboarding/enterprise-welcome"
    TRANSACTIONAL_CSM_ALERT = "transactional/csm-alert"
