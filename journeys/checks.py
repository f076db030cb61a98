"""System checks: a journey that names an unknown email template fails at start-up, not mid-run."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

from django.core import checks


def _template_keys(journey: Any) -> list[str]:
    """Template keys a journey passes to `send_email(template=...)`, as literals or constants."""
    try:
        source = textwrap.dedent(inspect.getsource(journey.run))
    except (OSError, TypeError):
        return []
    namespace = journey.run.__globals__
    keys = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.keyword) or node.arg != "template":
            continue
        value = node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            keys.append(value.value)
        elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
            owner = namespace.get(value.value.id)
            resolved = getattr(owner, value.attr, None)
            if isinstance(resolved, str):
                keys.append(resolved)
    return keys


@checks.register()
def journey_templates_exist(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from emails.registry import UnknownTemplate, get_template
    from journeys.registry import registry

    problems: list[checks.CheckMessage] = []
    for journey in registry.all():
        for key in _template_keys(journey):
            try:
                get_template(key)
            except UnknownTemplate:
                problems.append(
                    checks.Error(
                        f"journey {journey.id!r} sends template {key!r}, which is not registered",
                        hint="register it with emails.registry.register_template and add its bodies "
                        f"under templates/emails/{key}/",
                        id="hogsend.E001",
                    )
                )
    return problems
