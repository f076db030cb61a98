from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from hogsend.api import api

urlpatterns = [
    path("v1/", api.urls),
    path("admin/", admin.site.urls),
    path("", include("contacts.urls")),  # preference center, one-click unsubscribe
    path("e/", include("emails.urls")),  # open pixel, click redirects
    path("anymail/", include("anymail.urls")),  # provider tracking webhooks (signature-verified)
]
