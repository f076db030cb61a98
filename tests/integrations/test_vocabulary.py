"""One vocabulary: every event name a webhook preset can emit is spelled as the constants spell it,
and so is every name the shipped journeys trigger on, exit on, wait for, look back for or emit.
A provider's cancellation must stop the journeys that listen for a cancellation."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

import journeys.shipped
from integrations.sources import clerk, segment, stripe
from integrations.sources.base import Received
from journeys.durations import hours
from journeys.shipped.constants import Events
from tests.integrations.conftest import payload, stripe_headers

CONSTANTS = {value for key, value in vars(Events).items() if key.isupper()}
STRIPE_OBJECT_KINDS = {
    "invoice": "invoice",
    "payment_intent": "payment_intent",
    "customer.subscription": "subscription",
    "checkout.session": "checkout.session",
}


def _delivery(source_id: str, body: dict) -> Received:
    return Received(source_id=source_id, body=b"{}", headers={}, payload=body)


def _stripe_emits() -> dict[str, str]:
    emitted = {}
    for stripe_type in stripe.EVENT_NAMES:
        kind = next(k for prefix, k in STRIPE_OBJECT_KINDS.items() if stripe_type.startswith(prefix + "."))
        body = {
            "id": f"evt_{stripe_type}",
            "type": stripe_type,
            "created": 1729512000,
            "data": {"object": {"object": kind, "id": "obj_1", "metadata": {"user_id": "u1"}}},
        }
        [event] = stripe.stripe_map(_delivery("stripe", body))
        emitted[f"stripe {stripe_type}"] = event.name
    return emitted


def _clerk_emits() -> dict[str, str]:
    emitted = {}
    for clerk_type in sorted(clerk.USER_EVENTS | clerk.SESSION_EVENTS):
        body = {"type": clerk_type, "data": {"id": "user_1", "user_id": "user_1"}}
        [event] = clerk.clerk_map(_delivery("clerk", body))
        emitted[f"clerk {clerk_type}"] = event.name
    return emitted


def _segment_emits() -> dict[str, str]:
    # A `track` keeps the client's own event name; only `identify` is named by the preset.
    body = {"type": "identify", "userId": "u1", "messageId": "m1", "traits": {}}
    [event] = segment.segment_map(_delivery("segment", body))
    return {"segment identify": event.name}


def preset_emits() -> dict[str, str]:
    """Every event name a preset names itself (PostHog and Segment's `track` pass names through)."""
    return {**_stripe_emits(), **_clerk_emits(), **_segment_emits()}


def _event_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Events":
        return getattr(Events, node.attr)
    return None


def journey_names() -> dict[str, str]:
    """Every event name the shipped journeys and tasks use: triggers, exit rules and task events
    from their definitions; waits, look-backs and emitted events from their source."""
    used = {}
    for journey in journeys.shipped.JOURNEYS:
        used[f"{journey.id} trigger"] = journey.trigger.event
        for rule in journey.exit_on:
            used[f"{journey.id} exit_on {rule.event}"] = rule.event
    for task in journeys.shipped.TASKS:
        for name in task.on_events:
            used[f"task {task.name} on {name}"] = name
    package = Path(inspect.getfile(journeys.shipped)).parent
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            if method not in {"wait_for_event", "has_event", "trigger"}:
                continue
            # has_event(user_id, event, ...); wait_for_event(event, ...); trigger(event, ...)
            position = 1 if method == "has_event" else 0
            argument = next((k.value for k in node.keywords if k.arg == "event"), None)
            if argument is None and len(node.args) > position:
                argument = node.args[position]
            name = _event_name(argument) if argument is not None else None
            assert name is not None, f"{module.name}:{node.lineno}: {method} names no event we can read"
            used[f"{module.name}:{node.lineno} {method}"] = name
    return used


def _spelling(name: str) -> str:
    """Names that differ only in spelling look alike here: case, separators, doubled letters
    (cancelled/canceled), -ise/-ize."""
    letters = re.sub(r"[^a-z0-9]", "", name.lower()).replace("ise", "ize")
    return re.sub(r"(.)\1+", r"\1", letters)


def test_the_enumeration_reaches_every_preset_mapping_and_every_kind_of_journey_use():
    emitted = preset_emits()
    assert len([k for k in emitted if k.startswith("stripe ")]) == len(stripe.EVENT_NAMES)
    used = journey_names()
    for pattern in (
        r" trigger$",
        r" exit_on ",
        r"^task ",
        r"\.py:\d+ wait_for_event$",
        r"\.py:\d+ has_event$",
        r"\.py:\d+ trigger$",
    ):
        assert any(re.search(pattern, label) for label in used), f"nothing like {pattern!r} in {sorted(used)}"


@pytest.mark.parametrize("source_and_type, name", sorted(preset_emits().items()))
def test_every_event_name_a_preset_emits_is_a_constant(source_and_type, name):
    assert name in CONSTANTS, (
        f"{source_and_type} emits {name!r}, which journeys.shipped.constants.Events does not define"
    )


@pytest.mark.parametrize("use, name", sorted(journey_names().items()))
def test_every_event_name_the_shipped_journeys_use_is_a_constant(use, name):
    assert name in CONSTANTS, f"{use} names {name!r}, which Events does not define"


def test_no_two_event_names_differ_only_in_spelling():
    names = CONSTANTS | set(preset_emits().values()) | set(journey_names().values())
    by_spelling: dict[str, set[str]] = {}
    for name in names:
        by_spelling.setdefault(_spelling(name), set()).add(name)
    assert [sorted(v) for v in by_spelling.values() if len(v) > 1] == []


def test_a_stripe_cancellation_stops_the_churn_emails(journey_harness, post_webhook):
    journey_harness.start("churn-prevention", user_id="user-42", email="ada@example.com")
    journey_harness.advance(hours(2))
    delivery = json.loads(payload("stripe_subscription_deleted"))
    delivery["created"] = int(journey_harness.now().timestamp())  # Stripe stamps it as it happens
    body = json.dumps(delivery).encode()
    assert post_webhook("stripe", body, stripe_headers(body)).status_code == 200

    run = journey_harness.run("churn-prevention", "user-42")
    assert (run.status, run.exit_reason) == ("exited", "exit_on:subscription.cancelled")
