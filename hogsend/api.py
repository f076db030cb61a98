"""The root NinjaAPI: mounts each app's router under /v1 and shapes every error the same way."""

from __future__ import annotations

from django.http import HttpRequest

from contacts.api import router as contacts_router
from emails.api import router as emails_router
from hogsend.errors import HogsendAPI, JsonBodyParser, install_error_handlers

api = HogsendAPI(
    title="Hogsend",
    version="1",
    description="Lifecycle messaging: send product events, read contacts and their timelines.",
    urls_namespace="api",
    parser=JsonBodyParser(),
)
api.add_router("/", contacts_router)
api.add_router("/", emails_router)
api.add_router("/admin", "hogsend.admin_api.router")


@api.get("/health", tags=["operations"], auth=None)
def health(request: HttpRequest):
    """Liveness for load balancers and operators: database, outbox backlog, live journey workers."""
    from contacts.models import Event
    from journeys.runtime.worker import worker_heartbeats

    try:
        workers = worker_heartbeats()
    except Exception:
        workers = None
    pending = Event.objects.filter(dispatch_state=Event.DispatchState.PENDING).count()
    return {"ok": True, "outbox_pending": pending, "workers": workers}


install_error_handlers(api)
