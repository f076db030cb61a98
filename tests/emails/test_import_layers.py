"""The email modules import one way, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports_of(module: str) -> set[str]:
    path = ROOT / (module.replace(".", "/") + ".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def reaches(start: str, target: str, modules: set[str]) -> bool:
    seen, todo = set(), [start]
    while todo:
        for dep in imports_of(todo.pop()) & modules:
            if dep == target:
                return True
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


def test_the_send_pipeline_modules_form_no_import_circle():
    modules = {"emails.services", "emails.tasks", "emails.delivery", "emails.message", "emails.render"}
    assert [m for m in sorted(modules) if reaches(m, m, modules)] == []


def test_the_studio_site_and_the_email_admin_form_no_import_circle():
    modules = {"hogsend.admin", "emails.admin", "emails.studio", "emails.actions"}
    assert [m for m in sorted(modules) if reaches(m, m, modules)] == []
