"""Hosted signup forms and the double opt-in confirmation page (public; see contacts.signup_views)."""

from __future__ import annotations

from django.urls import path

from contacts import signup_views

app_name = "signup"
urlpatterns = [
    path("forms/confirm/<str:token>/", signup_views.confirm, name="confirm"),
    path("forms/<slug:slug>/", signup_views.signup_page, name="page"),
    path("forms/<slug:slug>/embed/", signup_views.signup_embed, name="embed"),
]
