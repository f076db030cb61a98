"""The floor `bin/bench` measures ingest against: the least a Django + ninja endpoint can do.

It validates the same body as `POST /v1/events` (the product's own schema) and does one INSERT,
nothing else: no auth, no contact, no middleware. Served the same way as the product (gunicorn,
sync workers, persistent connections) on the same PostgreSQL:

    gunicorn -w 4 bench.floor:application
"""

from __future__ import annotations

import json
import os
import uuid

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-floor",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("FLOOR_DB_NAME", "hogsend_bench"),
            "USER": "hogsend",
            "HOST": "127.0.0.1",
            "PORT": os.environ.get("HOGSEND_PG_PORT", "54329"),
            "CONN_MAX_AGE": 300,
        }
    },
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI  # noqa: E402

from contacts.schemas import EventIn  # noqa: E402

api = NinjaAPI(urls_namespace="floor")


@api.post("/events", response={202: dict})
def floor_event(request, payload: EventIn):
    event_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO floor_event (id, user_id, name, properties) VALUES (%s, %s, %s, %s::jsonb)",
            [event_id, payload.userId, payload.name, json.dumps(payload.eventProperties)],
        )
    return 202, {"eventId": str(event_id)}


urlpatterns = [path("v1/", api.urls)]
application = get_wsgi_application()
