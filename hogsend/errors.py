"""How /v1 answers when something goes wrong: always JSON, always a status the OpenAPI document lists.

Every error body has the same shape, `{"detail": "<what is wrong and how to fix it>"}`, plus
`errors` (one `{field, message}` per bad field) on a 422. A database that is unreachable is a 503
with `Retry-After` (the client should come back), never a 500; anything else unexpected is a JSON
500 with a reference to find it in the log.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from broadcasts.api import broadcast_in_schema_complete
from contacts.ingest import IngestError
from contacts.ratelimit import RateLimited
from contacts.schemas import (
    JSON_VALUE_SCHEMA,
    NO_NUL_PATTERN,
    PROPERTIES_MARKER,
    PROPERTIES_SCHEMA,
    text_problem,
)
from emails.schemas import email_send_in_schema_complete

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


class FieldError(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[FieldError] | None = None


# Every /v1 operation may answer these; the OpenAPI document says so, with ErrorOut as the body.
ERROR_RESPONSES: dict[int, str] = {
    400: "Unreadable body: not JSON, not UTF-8, or a form instead of JSON",
    401: "Missing, malformed, unknown, revoked or expired API key (with WWW-Authenticate: Bearer)",
    403: "The API key lacks the scope this endpoint needs",
    404: "No such resource",
    409: "Conflicts with what is stored (e.g. an idempotency key that belongs to another event)",
    413: "Request body too large",
    422: "A field is invalid; `errors` names each one and says how to fix it",
    429: "Rate limit reached; retry after the Retry-After header's seconds",
    500: "Unexpected server error; the detail carries a reference to the server log",
    503: "A dependency (the database) is unavailable; retry after the Retry-After header's seconds",
}


class BodyProblem(ValueError):
    """Why a request body could not be read, in words the client can act on."""


class JsonBodyParser(Parser):
    """ninja's JSON parser, saying which problem a body has instead of "Cannot parse request body"."""

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = (request.content_type or "").lower()
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise BodyProblem(
                f"this endpoint takes a JSON body, got a form body ({content_type}); "
                "send JSON with Content-Type: application/json"
            )
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BodyProblem(
                f"the body is not valid UTF-8 (byte {error.start}); encode JSON as UTF-8"
            ) from None
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            raise BodyProblem(
                f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
            ) from None


def _refuse_constant(name: str) -> Any:
    raise BodyProblem(f"invalid JSON: {name} is not a JSON value; send a finite number or a string")


class HogsendAPI(NinjaAPI):
    """The root API, whose OpenAPI document lists every error status an operation can answer."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components["JsonValue"] = JSON_VALUE_SCHEMA  # what `Properties` fields refer to
        _properties_expand(schema)
        if "EmailSendIn" in components:
            email_send_in_schema_complete(components["EmailSendIn"])
        if "BroadcastIn" in components:
            broadcast_in_schema_complete(components["BroadcastIn"], components["ConditionIn"])
        components.update(components["ErrorOut"].pop("$defs", {}))
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    _declare_no_nul(parameter.get("schema") or {})
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_RESPONSES.items():
                    # ninja keys responses by int; an operation's own schema for a status wins.
                    if status not in responses and str(status) not in responses:
                        responses[status] = {"description": description, "content": body}
        return schema


def _properties_expand(node: Any) -> None:
    """Replace every `Properties` marker with the schema it stands for (see contacts.schemas)."""
    if isinstance(node, dict):
        if node.pop(PROPERTIES_MARKER, False):
            node.update(PROPERTIES_SCHEMA)
        for value in node.values():
            _properties_expand(value)
    elif isinstance(node, list):
        for value in node:
            _properties_expand(value)


def _declare_no_nul(schema: dict[str, Any]) -> None:
    """A path or query string that states no pattern of its own says what ApiInputGuardMiddleware
    enforces: no NUL character."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string" and not {"pattern", "format", "enum"} & option.keys():
            option["pattern"] = NO_NUL_PATTERN


def error_response(request: HttpRequest, detail: str, status: int, **extra: Any) -> HttpResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def install_error_handlers(api: NinjaAPI) -> None:
    """Register the /v1 exception handlers on the root API (most specific class wins)."""

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = []
        for e in exc.errors:
            loc = [str(part) for part in e.get("loc", ()) if part not in ("body", "payload")]
            message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            errors.append({"field": ".".join(loc) or "body", "message": message})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(request, f"invalid request — {summary}", 422, errors=errors)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        detail = str(exc)
        if isinstance(exc.__cause__, BodyProblem):
            detail = f"cannot parse the request body: {exc.__cause__}"
        response = error_response(request, detail, exc.status_code)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="hogsend"'
        return response

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = error_response(
            request, "authentication required; send 'Authorization: Bearer <api key>'", 401
        )
        response["WWW-Authenticate"] = 'Bearer realm="hogsend"'
        return response

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.path.rstrip("/").endswith("/events/batch"):
            detail = (
                f"request body too large (limit {limit:,} bytes); "
                f"split the batch (at most {settings.EVENTS_BATCH_MAX:,} events) into smaller ones"
            )
        else:
            detail = f"request body too large (limit {limit:,} bytes); send smaller properties"
        return error_response(request, detail, 413)

    @api.exception_handler(IngestError)
    def ingest_error(request: HttpRequest, exc: IngestError) -> HttpResponse:
        return error_response(request, str(exc), exc.status_code)

    @api.exception_handler(RateLimited)
    def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        response = error_response(request, str(exc), 429)
        response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.error("database unavailable during %s %s: %s", request.method, request.path, exc)
        response = error_response(
            request, "the database is unavailable; retry after the Retry-After seconds", 503
        )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # A safety net for a field no schema checked: PostgreSQL cannot store a NUL, and UTF-8
        # cannot encode a lone surrogate. The client can fix either, so it is theirs to fix.
        if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):
            return error_response(request, "a value contains a NUL character (\\u0000); remove it", 422)
        if isinstance(exc, UnicodeEncodeError) and "surrogate" in str(exc):
            return error_response(
                request, "a value contains a lone UTF-16 surrogate; send valid Unicode", 422
            )
        reference = uuid.uuid4().hex[:12]
        logger.exception("unexpected error %s during %s %s", reference, request.method, request.path)
        return error_response(request, f"internal error; reference {reference} in the server log", 500)


class ApiInputGuardMiddleware:
    """Refuses, under /v1, a path or query parameter PostgreSQL could not compare: a NUL character
    or a lone surrogate. Body fields are checked by the schemas; this covers what no schema sees
    before a selector filters on it."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/v1/"):
            problems = [
                {"field": "path", "message": problem} for problem in [text_problem(request.path)] if problem
            ] + [
                {"field": name, "message": problem}
                for name, values in request.GET.lists()
                for problem in {text_problem(name), *(text_problem(v) for v in values)}
                if problem
            ]
            if problems:
                summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
                return error_response(request, f"invalid request — {summary}", 422, errors=problems)
        response = self.get_response(request)
        if (
            request.path.startswith("/v1/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            # Errors raised outside the API's handlers (ninja's 405, a middleware's refusal) get
            # the same JSON body; their headers (Allow, Retry-After) stay.
            detail = response.reason_phrase
            if response.status_code == 405 and response.has_header("Allow"):
                detail = f"method {request.method} is not allowed here; use {response['Allow']}"
            json_response = error_response(request, detail, response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if response.has_header(header):
                    json_response[header] = response[header]
            return json_response
        return response


def json_page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for paths no route matches: JSON under /v1, the usual page elsewhere."""
    if request.path.startswith("/v1/"):
        return error_response(request, f"no endpoint at {request.path}; see /v1/docs", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 for errors outside the API's handlers (middleware): JSON under /v1."""
    if request.path.startswith("/v1/"):
        return error_response(request, "internal error; see the server log", 500)
    from django.views.defaults import server_error

    return server_error(request)
