"""Event names and template keys the shipped journeys use: one place, no magic strings."""

from __future__ import annotations


class Events:
    """Every event name the shipped journeys and the webhook presets speak; the spellings are the
    seed's (`subscription.cancelled`), so a provider's event stops the journeys that name it."""

    USER_CREATED = "user.created"
    USER_SIGNED_UP = "user.signed_up"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_IDENTIFIED = "user.identified"
    USER_ACTIVATED = "user.activated"
    SESSION_CREATED = "session.created"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    SESSION_REMOVED = "session.removed"
    SESSION_REVOKED = "session.revoked"
    FEATURE_USED = "feature.used"
    SETUP_COMPLETED = "setup.completed"
    TRIAL_STARTED = "trial.started"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_ACTION_REQUIRED = "payment.action_required"
    INVOICE_UPCOMING = "invoice.upcoming"
    SUBSCRIPTION_CREATED = "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    SUBSCRIPTION_PAUSED = "subscription.paused"
    SUBSCRIPTION_RESUMED = "subscription.resumed"
    SUBSCRIPTION_TRIAL_WILL_END = "subscription.trial_will_end"
    CHECKOUT_ABANDONED = "checkout.abandoned"
    CHECKOUT_COMPLETED = "checkout.completed"
    CSM_ASSIGNMENT_REQUESTED = "csm.assignment_requested"
    CSM_CONTACTED = "csm.contacted"
    MEETING_BOOKED = "meeting.booked"
    # Human approval gate
    OFFER_PROPOSED = "offer.proposed"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_GRANTED = "approval.granted"
    # Support follow-up
    TICKET_RESOLVED = "ticket.resolved"
    TICKET_REOPENED = "ticket.reopened"
    SUPPORT_REOPEN_REQUESTED = "support.reopen_requested"
    EMAIL_ANSWERED = "email.answered"  # a semantic link or hosted answer (emails/answers.py)
    # Lead alerts
    LEAD_CAPTURED = "lead.captured"
    LEAD_CONTEXT = "lead.context"
    # Segment membership (audiences): emitted for the contact, property `segment_id`
    SEGMENT_ENTERED = "segment.entered"
    SEGMENT_EXITED = "segment.exited"
    # Comment digest
    COMMENT_CREATED = "comment.created"


class Templates:
    ACTIVATION_WELCOME = "activation/welcome"
    ACTIVATION_ADVANCED = "activation/advanced"
    ACTIVATION_NUDGE = "activation/nudge"
    CHURN_PAYMENT_FAILED = "churn-payment-failed"
    CONVERSION_WINBACK_OFFER = "conversion-winback-offer"
    ONBOARDING_CONCIERGE_INTRO = "onboarding/concierge-intro"
    ONBOARDING_ENTERPRISE_WELCOME = "onboarding/enterprise-welcome"
    TRANSACTIONAL_CSM_ALERT = "transactional/csm-alert"
    OFFER_APPROVED = "offer/approved"
    OFFER_STANDARD = "offer/standard"
    TRANSACTIONAL_APPROVAL_ALERT = "transactional/approval-alert"
    SUPPORT_DID_IT_FIX = "support/did-it-fix"
    SUPPORT_REOPENED = "support/reopened"
    TRANSACTIONAL_SUPPORT_REOPEN_ALERT = "transactional/support-reopen-alert"
    TRANSACTIONAL_LEAD_ALERT = "transactional/lead-alert"
    COMMENTS_DIGEST = "comments/digest"


class Questions:
    """Questions the shipped emails ask with semantic links (`{% answer_link %}`)."""

    FIXED = "fixed"
