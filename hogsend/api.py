"""The root NinjaAPI: mounts each app's router under /v1 and shapes every error the same way."""

from __future__ import annotations

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
api.add_router("/", "operations.api.router")  # /v1/health
api.add_router("/", "integrations.api.router")  # /v1/webhooks/{source_id}
api.add_router("/", "audiences.api.router")  # /v1/segments
install_error_handlers(api)
