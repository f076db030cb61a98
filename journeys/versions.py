"""A journey's version: a stable hash of its run function's code and its metadata.

Every run records the version it enrolled under, so the Studio can show runs per version and
`manage.py journeys_check` can tell which parked runs started on code that has changed since. The
hash reads the function's code as parsed (its arguments and body: the same in every process and
across restarts, unmoved by comments, formatting or the function's own name, so a copy kept under
another name has the same version) and the metadata that decides who enters and who leaves;
`enabled` and the display name are left out, since toggling them changes no run's path.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap

from journeys.definition import Journey

VERSION_LENGTH = 12
_cache: dict[int, tuple[Journey, str]] = {}


def _code_text(journey: Journey) -> str:
    fn = journey.run
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):  # no source on disk: the compiled code stands in
        code = fn.__code__
        return repr((code.co_code, code.co_consts, code.co_names, code.co_varnames))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef))
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring is the journey's description, not its behaviour
    return ast.dump(node.args) + ast.dump(ast.Module(body=body, type_ignores=[]))


def _meta_text(journey: Journey) -> str:
    # A holdout decides who is sent to, so it is part of the version; a journey without one keeps
    # the version it had before holdouts existed. The goal only measures, so it is not.
    holdout = (journey.holdout,) if journey.holdout else ()
    return repr(
        (
            journey.id,
            journey.trigger,
            journey.entry_limit.value,
            journey.entry_period,
            journey.exit_on,
            journey.suppress,
            journey.category,
            *holdout,
        )
        # Only a digest journey carries its digest, so every other journey keeps the version it had.
        + ((journey.digest,) if journey.digest is not None else ())
    )


def journey_version(journey: Journey) -> str:
    """The journey's version (12 hex digits), computed once per journey object."""
    cached = _cache.get(id(journey))
    if cached is not None and cached[0] is journey:
        return cached[1]
    digest = hashlib.sha256(f"{_meta_text(journey)}\n{_code_text(journey)}".encode()).hexdigest()
    version = digest[:VERSION_LENGTH]
    _cache[id(journey)] = (journey, version)
    return version
