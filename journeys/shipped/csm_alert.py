from __future__ import annotations

from typing import Any

from django.conf import settings

from journeys.definition import durable_task
from journeys.durations import minutes
from journeys.keys import bounded_key
from journeys.send import send_operator_email
from journeys.shipped.constants import Events, Templates


@durable_task(name="csm-alert", on_events=[Events.CSM_ASSIGNMENT_REQUESTED], retries=2, timeout=minutes(15))
async def csm_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """Email the CSM inbox about an enterprise signup waiting for a human."""
    user_id = payload.get("user_id") or ""
    if not user_id:
        return {"status": "skipped", "reason": "missing_user_id"}
    customer_email = payload.get("user_email") or user_id
    props = payload.get("properties") or {}
    reminder = props.get("reminder") is True
    requested_at = str(props.get("requested_at") or payload.get("occurred_at") or "")
    result = await send_operator_email(
        to=settings.CSM_ALERT_EMAIL,
        template=Templates.TRANSACTIONAL_CSM_ALERT,
        subject=(
            f"[CSM — reminder] enterprise signup waiting: {customer_email}"
            if reminder
            else f"[CSM] new enterprise signup: {customer_email}"
        ),
        props={
            "customer_email": customer_email,
            "customer_id": user_id,
            "seats": int(props.get("seats") or 0),
            "reminder": reminder,
            "requested_at": requested_at,
        },
        # requested_at is in the key: the journey's re-page sends, a retry of the same page does not.
        idempotency_key=bounded_key("csm-alert", user_id, requested_at),
    )
    return {"status": result.status}
