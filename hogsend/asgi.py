from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hogsend.settings")
application = get_asgi_application()

# gunicorn and uvicorn run no system checks: refuse to serve with a public SECRET_KEY.
from hogsend.checks import refuse_insecure_settings  # noqa: E402

refuse_insecure_settings()
