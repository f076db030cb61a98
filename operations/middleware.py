"""Times every /v1 request by route and status, and counts events in and refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

EVENT_ROUTES = ("v1/events", "v1/events/batch")


class RequestMetricsMiddleware:
    """Sync and async alike, so it never costs an ASGI server a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        if not request.path.startswith("/v1/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        self._safely_observe(request, response, time.perf_counter() - started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/v1/"):
            return await self.get_response(request)
        started = time.perf_counter()
        response = await self.get_response(request)
        self._safely_observe(request, response, time.perf_counter() - started)
        return response

    def _safely_observe(self, request: HttpRequest, response: HttpResponse, elapsed: float) -> None:
        try:
            self._observe(request, response, elapsed)
        except Exception:  # metrics never break a request
            pass

    def _observe(self, request: HttpRequest, response: HttpResponse, elapsed: float) -> None:
        from operations.metrics import EVENTS_INGESTED, EVENTS_REJECTED, HTTP_LATENCY

        match = getattr(request, "resolver_match", None)
        # The route pattern, never the raw path: ids in paths would make a series per contact.
        route = match.route if match else "unmatched"
        status = response.status_code
        HTTP_LATENCY.labels(route, request.method, str(status)).observe(elapsed)
        if request.method != "POST" or route not in EVENT_ROUTES:
            return
        if route == "v1/events":
            if status == 202:
                EVENTS_INGESTED.labels("accepted").inc()
            elif status == 200:
                EVENTS_INGESTED.labels("duplicate").inc()
            else:
                EVENTS_REJECTED.labels(str(status)).inc()
            return
        if status in (202, 207):
            # The view leaves its counts on the request: a 1,000-item body is not parsed again.
            counts = getattr(request, "ingest_counts", None)
            if counts is None:
                counts = json.loads(response.content)
            EVENTS_INGESTED.labels("accepted").inc(counts.get("accepted", 0))
            EVENTS_INGESTED.labels("duplicate").inc(counts.get("duplicates", 0))
            if counts.get("rejected"):
                EVENTS_REJECTED.labels("422").inc(counts["rejected"])
        else:
            EVENTS_REJECTED.labels(str(status)).inc()
