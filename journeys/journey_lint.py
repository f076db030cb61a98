"""A journey lint: what reads fine and goes wrong in production, found in the function's code.

- `unknown_event`: an event name (trigger, `exit_on`, a wait, a history read, a trigger) that no
  constant defines: a bare string the constants classes the journey's module can see (such as
  `Events`) do not contain, so a typo never matches anything;
- `wait_without_timeout`: a `wait_for_event` with no timeout (it would park forever);
- `send_without_category`: a journey that sends while its category is the default `journey` or
  one `register_category` never defined, so contacts cannot opt out of this kind of mail alone;
- `awaited_exit_event` (warn): an awaited event that is also in `exit_on`: the event ends the
  run at ingest, before the wait can return it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from dataclasses import dataclass
from typing import Any

from contacts.categories import JOURNEY, UnknownCategory, category_get
from journeys.definition import Journey

_EVENT_ARGUMENT = {"wait_for_event": "event", "has_event": "event", "trigger": "event"}


@dataclass(frozen=True)
class Finding:
    journey_id: str
    severity: str  # "error" | "warn"
    code: str
    message: str
    line: int | None = None


def _constant_values(namespace: dict[str, Any]) -> set[str]:
    """String values of the upper-case attributes of every class the namespace holds (and of the
    classes of the modules it imports): where a project's event constants live."""
    values: set[str] = set()
    holders = list(namespace.values())
    holders += [v for m in namespace.values() if isinstance(m, types.ModuleType) for v in vars(m).values()]
    for holder in holders:
        if isinstance(holder, type):
            values.update(
                v
                for k, v in vars(holder).items()
                if k.isupper() and isinstance(v, str) and not k.startswith("_")
            )
    return values


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> tuple[Any, bool]:
    """The value of a literal or a dotted name, and whether it was written as a bare literal."""
    if isinstance(node, ast.Constant):
        return node.value, True
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in namespace:
        return None, False
    value: Any = namespace[node.id]
    for part in parts:
        value = getattr(value, part, None)
    return value, False


def _argument(call: ast.Call, name: str, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def journey_lint(journey: Journey) -> list[Finding]:
    fn = journey.run
    try:  # what the function's names refer to: its module's globals and what it closes over
        closure = inspect.getclosurevars(fn)
        namespace = {**closure.globals, **getattr(fn, "__globals__", {}), **closure.nonlocals}
    except (TypeError, ValueError):
        namespace = dict(getattr(fn, "__globals__", {}))
    known = _constant_values(namespace)
    findings: list[Finding] = []

    def add(severity: str, code: str, message: str, line: int | None = None) -> None:
        findings.append(Finding(journey.id, severity, code, message, line))

    for role, event in [("trigger", journey.trigger.event), *(("exit_on", r.event) for r in journey.exit_on)]:
        if event not in known:
            add("warn", "unknown_event", f"{role} event {event!r} is not defined by any constant")
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        first_line = inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        return findings
    exit_events = {rule.event for rule in journey.exit_on}
    sends = False
    for call in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)):
        name, line = _called(call), first_line + call.lineno - 1
        if name in ("send_email",):
            sends = True
        if name not in _EVENT_ARGUMENT or not isinstance(call.func, ast.Attribute):
            continue
        node = _argument(call, _EVENT_ARGUMENT[name], 1 if name == "has_event" else 0)
        if node is None:
            continue
        event, bare = _resolve(node, namespace)
        if not isinstance(event, str):
            continue
        if bare and event not in known:
            add("warn", "unknown_event", f"{name} names {event!r}, which no constant defines", line)
        if name == "wait_for_event":
            timeout = _argument(call, "timeout", 1)
            if timeout is None or (isinstance(timeout, ast.Constant) and timeout.value is None):
                add("error", "wait_without_timeout", f"wait_for_event({event!r}) has no timeout", line)
            if event in exit_events:
                add(
                    "warn",
                    "awaited_exit_event",
                    f"waits for {event!r}, which is also in exit_on: that event ends the run at ingest "
                    "before the wait returns it",
                    line,
                )
    if sends:
        try:
            category_get(journey.category)
        except UnknownCategory:
            add(
                "error",
                "send_without_category",
                f"sends with category {journey.category!r}, never registered",
            )
        else:
            if journey.category == JOURNEY:
                add(
                    "warn",
                    "send_without_category",
                    "sends without a category of its own (the default 'journey'): contacts can only opt "
                    "out of it with all journey mail",
                )
    return findings


def journey_event_names(journey: Journey) -> set[str]:
    """Every event name the journey reacts to or reads: its trigger, its `exit_on` events, and the
    events its code waits for or looks up in history (`wait_for_event`, `history.has_event`) where
    the name is a literal or a constant. What a backtest must replay for it."""
    return set(journey_event_uses(journey))


def journey_event_uses(journey: Journey) -> dict[str, set[str]]:
    """`journey_event_names` with how each name is used: "trigger", "exit", "wait"
    (`wait_for_event`) or "history" (`history.has_event`)."""
    uses: dict[str, set[str]] = {journey.trigger.event: {"trigger"}}
    for rule in journey.exit_on:
        uses.setdefault(rule.event, set()).add("exit")
    fn = journey.run
    try:
        closure = inspect.getclosurevars(fn)
        namespace = {**closure.globals, **getattr(fn, "__globals__", {}), **closure.nonlocals}
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (TypeError, ValueError, OSError, SyntaxError):
        return uses
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = _called(call)
        if name not in ("wait_for_event", "has_event") or not isinstance(call.func, ast.Attribute):
            continue
        node = _argument(call, _EVENT_ARGUMENT[name], 1 if name == "has_event" else 0)
        event = _resolve(node, namespace)[0] if node is not None else None
        if isinstance(event, str):
            uses.setdefault(event, set()).add("wait" if name == "wait_for_event" else "history")
    return uses
