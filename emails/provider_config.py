"""EMAIL_PROVIDER → Django's EMAIL_BACKEND and anymail's ANYMAIL dict. Imported by settings.py,
so it must not import Django models or anything that needs configured settings.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    # Resend honours an Idempotency-Key header; our subclass of anymail's backend sends it.
    "resend": "emails.backends.ResendEmailBackend",
    "postmark": "anymail.backends.postmark.EmailBackend",
    "ses": "anymail.backends.amazon_ses.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
}

# provider → (ANYMAIL key, env var, required)
_KEYS: dict[str, list[tuple[str, str, bool]]] = {
    "resend": [
        ("RESEND_API_KEY", "RESEND_API_KEY", True),
        ("RESEND_SIGNING_SECRET", "RESEND_SIGNING_SECRET", False),
    ],
    "postmark": [("POSTMARK_SERVER_TOKEN", "POSTMARK_SERVER_TOKEN", True)],
    "ses": [],  # boto3 reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION itself
    "sendgrid": [
        ("SENDGRID_API_KEY", "SENDGRID_API_KEY", True),
        (
            "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY",
            "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY",
            False,
        ),
    ],
    "mailgun": [
        ("MAILGUN_API_KEY", "MAILGUN_API_KEY", True),
        ("MAILGUN_SENDER_DOMAIN", "MAILGUN_SENDER_DOMAIN", False),
        ("MAILGUN_API_URL", "MAILGUN_API_URL", False),
        ("MAILGUN_WEBHOOK_SIGNING_KEY", "MAILGUN_WEBHOOK_SIGNING_KEY", False),
    ],
}


# provider → (URL segment of its tracking webhook, the ANYMAIL settings any one of which verifies a
# delivery). Only the configured provider's endpoint answers; without one of its secrets it refuses
# every delivery, because an unverified complaint would let anyone suppress any address.
TRACKING_WEBHOOKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "resend": ("resend", ("RESEND_SIGNING_SECRET",)),  # svix signature
    "postmark": ("postmark", ("WEBHOOK_SECRET",)),  # basic auth is Postmark's only scheme
    "ses": ("amazon_ses", ("WEBHOOK_SECRET",)),  # basic auth in the SNS subscription URL
    "sendgrid": ("sendgrid", ("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", "WEBHOOK_SECRET")),
    # Not the API key anymail would fall back to: Mailgun signs webhooks with its own key.
    "mailgun": ("mailgun", ("MAILGUN_WEBHOOK_SIGNING_KEY",)),
}


def provider_settings(provider: str, env: Any) -> tuple[str, dict[str, Any]]:
    """(EMAIL_BACKEND, ANYMAIL) for the provider named in EMAIL_PROVIDER; a missing key fails at start-up."""
    provider = (provider or "console").strip().lower()
    if provider not in BACKENDS:
        raise ImproperlyConfigured(f"EMAIL_PROVIDER must be one of {', '.join(BACKENDS)}; got {provider!r}")
    anymail: dict[str, Any] = {}
    missing = []
    for key, var, required in _KEYS.get(provider, []):
        value = env(var, default="")
        if value:
            anymail[key] = value
        elif required:
            missing.append(var)
    if missing:
        raise ImproperlyConfigured(f"EMAIL_PROVIDER={provider} needs {', '.join(missing)} in the environment")
    if provider == "ses":
        region = env("AWS_REGION", default="")
        if region:
            anymail["AMAZON_SES_CLIENT_PARAMS"] = {"region_name": region}
    # Basic auth ("user:password") that every provider's tracking webhook must present.
    secret = env("EMAIL_WEBHOOK_SECRET", default="")
    if secret:
        anymail["WEBHOOK_SECRET"] = secret
    return BACKENDS[provider], anymail
