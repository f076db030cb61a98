from __future__ import annotations

from django.contrib import admin
from django.urls import path

from hogsend.api import api

urlpatterns = [
    path("v1/", api.urls),
    path("admin/", admin.site.urls),
]
