from __future__ import annotations

from django.urls import path

from emails import answer_views, views

app_name = "emails"
urlpatterns = [
    path("o/<str:token>/", views.email_open, name="open"),
    path("c/<str:token>/", views.email_click, name="click"),
    path("a/<str:token>/", answer_views.answer_page, name="answer"),  # semantic links, hosted answers
]
