from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from emails.webhooks import provider_tracking_webhook
from hogsend.api import api
from operations.views import metrics_view

urlpatterns = [
    path("v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus (METRICS_TOKEN or loopback)
    path("admin/", admin.site.urls),
    path("", include("contacts.urls")),  # preference center, one-click unsubscribe
    path("", include("contacts.signup_urls")),  # hosted signup forms, double opt-in confirmation
    path("e/", include("emails.urls")),  # open pixel, click redirects
    # Only EMAIL_PROVIDER's tracking webhook answers, and only with its verification secret set.
    path(
        "anymail/<slug:segment>/tracking/",
        provider_tracking_webhook,
        name="provider_tracking_webhook",
    ),
]

# JSON under /v1 for paths no route matches and errors outside the API's own handlers.
handler404 = "hogsend.errors.json_page_not_found"
handler500 = "hogsend.errors.json_server_error"
