"""Segments that ship with Hogsend, as examples of each kind of condition.

A project lists its own in a module of its choosing and names it in `HOGSEND_SEGMENT_MODULES`.
"""

from __future__ import annotations

from audiences.segments import define_segment
from journeys.durations import days
from journeys.shipped.constants import Events

PRO_PLAN = define_segment(
    "pro-plan",
    name="On the Pro plan",
    where=lambda b: b.prop("plan").eq("pro"),
)

POWER_USERS = define_segment(
    "power-users",
    name="Used a feature 3+ times this week",
    where=lambda b: b.event(Events.FEATURE_USED).at_least(3, within=days(7)),
)

NEVER_PURCHASED = define_segment(
    "never-purchased",
    name="Subscribed, never completed a checkout",
    where=lambda b: b.subscribed() & b.event(Events.CHECKOUT_COMPLETED).never(),
)

DORMANT = define_segment(
    "dormant",
    name="No session for 14 days",
    where=lambda b: b.event(Events.SESSION_STARTED).last_more_than(days(14)),
)

PRO_POWER_USERS = define_segment(
    "pro-power-users",
    name="Pro customers who are power users",
    where=lambda b: b.in_segment("pro-plan") & b.in_segment("power-users"),
)

PRODUCT_UPDATES_AUDIENCE = define_segment(
    "product-updates-audience",
    name="Can receive product updates",
    where=lambda b: b.subscribed() & b.confirmed() & b.accepts("product-updates") & ~b.suppressed(),
)

SEGMENTS = [PRO_PLAN, POWER_USERS, NEVER_PURCHASED, DORMANT, PRO_POWER_USERS, PRODUCT_UPDATES_AUDIENCE]
