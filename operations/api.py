"""`/v1/health`: the doctor's checks for load balancers (status only) and operators (with a read key)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from contacts.auth import read_auth
from operations.checks import Status, checked_at, checks_run, overall

router = Router(tags=["operations"])


@router.get("/health", auth=None, response={200: dict, 503: dict})
def health(request: HttpRequest):
    """200 when nothing is failing, 503 otherwise. Without a key the answer is the status alone;
    with a `read`-scope key it lists every check with its details (workers, journeys, backlog)."""
    # Authenticated only when a key is offered: a load balancer sends none and needs none.
    detailed = bool(request.headers.get("Authorization")) and read_auth(request) is not None
    results = checks_run(quick=not detailed)
    verdict = overall(results)
    body: dict = {"status": str(verdict)}
    if detailed:
        body["checkedAt"] = checked_at()
        body["checks"] = [r.as_dict() for r in results]
    return (503 if verdict == Status.FAILING else 200), body
