"""The root NinjaAPI: mounts each app's router under /v1 and shapes every error the same way."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from contacts.api import router as contacts_router
from contacts.ratelimit import RateLimited
from contacts.services import IngestError
from emails.api import router as emails_router

api = NinjaAPI(
    title="Hogsend",
    version="1",
    description="Lifecycle messaging: send product events, read contacts and their timelines.",
    urls_namespace="api",
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


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = []
    for e in exc.errors:
        loc = [str(part) for part in e.get("loc", ()) if part not in ("body", "payload")]
        errors.append({"field": ".".join(loc) or "body", "message": e.get("msg", "invalid")})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return api.create_response(
        request, {"detail": f"invalid request — {summary}", "errors": errors}, status=422
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": "authentication required"}, status=401)


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return api.create_response(
        request, {"detail": "request body too large; send at most 1,000 events per batch"}, status=413
    )


@api.exception_handler(IngestError)
def ingest_error(request: HttpRequest, exc: IngestError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(RateLimited)
def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = api.create_response(request, {"detail": str(exc)}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response
