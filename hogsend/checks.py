"""Start-up checks for settings that would make a deployment insecure.

Django runs these before every management command (migrate, runserver, runworker, check); the
WSGI/ASGI entry points call `refuse_insecure_settings` themselves, since gunicorn and uvicorn run no
checks. A test process runs neither, and sets its own key.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

# The placeholder .env.example ships; anyone who knows it can forge preference-center links.
INSECURE_SECRET_KEY = "dev-only-insecure-key-change-me"


def secret_key_problem() -> str | None:
    if settings.DEBUG:
        return None
    key = settings.SECRET_KEY or ""
    if key == INSECURE_SECRET_KEY or key.startswith("django-insecure-") or len(key) < 32:
        return (
            "SECRET_KEY is the public default (or shorter than 32 characters) and DEBUG is off: "
            "anyone could forge preference and unsubscribe links. Set SECRET_KEY in the environment "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'), or put one in "
            ".run/secret_key for local use."
        )
    return None


@checks.register(checks.Tags.security)
def secret_key_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problem = secret_key_problem()
    return [checks.Error(problem, id="hogsend.E001")] if problem else []


@checks.register(checks.Tags.security)
def tracking_webhook_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from emails.provider_config import TRACKING_WEBHOOKS
    from emails.webhooks import tracking_webhook_missing_secrets

    provider = (settings.EMAIL_PROVIDER or "").strip().lower()
    if provider not in TRACKING_WEBHOOKS:
        return []
    missing = tracking_webhook_missing_secrets(provider)
    if not missing:
        return []
    return [
        checks.Warning(
            f"EMAIL_PROVIDER={provider} but {' or '.join(missing)} is not set: its tracking webhook "
            "refuses every delivery (403), so bounces and complaints are not recorded.",
            id="hogsend.W002",
        )
    ]


def refuse_insecure_settings() -> None:
    """Raise at server start-up if the settings are unsafe to serve with."""
    problem = secret_key_problem()
    if problem:
        raise ImproperlyConfigured(problem)
