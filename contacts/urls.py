"""The preference center and one-click unsubscribe (public pages; the signed token is the key)."""

from __future__ import annotations

from django.urls import path

from contacts import views

app_name = "preferences"
urlpatterns = [
    path("preferences/<str:token>/", views.preference_center, name="center"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
