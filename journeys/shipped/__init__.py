"""The journeys Hogsend ships with: working examples to copy, each fully tested on the harness."""

from __future__ import annotations

from journeys.shipped import templates  # noqa: F401  (registers the email templates)
from journeys.shipped.abandoned_checkout import abandoned_checkout
from journeys.shipped.approval import approval_alert, approval_gate
from journeys.shipped.churn import churn_prevention
from journeys.shipped.comment_digest import comment_digest
from journeys.shipped.concierge import concierge_onboarding
from journeys.shipped.csm_alert import csm_alert
from journeys.shipped.lead_alerts import lead_alert, lead_context_alert
from journeys.shipped.support_followup import support_follow_up, support_reopen_alert
from journeys.shipped.welcome import activation_welcome

JOURNEYS = [
    activation_welcome,
    churn_prevention,
    abandoned_checkout,
    concierge_onboarding,
    approval_gate,
    support_follow_up,
    comment_digest,
]
TASKS = [csm_alert, approval_alert, support_reopen_alert, lead_alert, lead_context_alert]
