"""The journeys Hogsend ships with: working examples to copy, each fully tested on the harness."""

from __future__ import annotations

from journeys.shipped import templates  # noqa: F401  (registers the email templates)
from journeys.shipped.abandoned_checkout import abandoned_checkout
from journeys.shipped.churn import churn_prevention
from journeys.shipped.concierge import concierge_onboarding
from journeys.shipped.csm_alert import csm_alert
from journeys.shipped.welcome import activation_welcome

JOURNEYS = [activation_welcome, churn_prevention, abandoned_checkout, concierge_onboarding]
TASKS = [csm_alert]
