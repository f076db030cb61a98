from __future__ import annotations

from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emails"
    verbose_name = "Email"

    def ready(self) -> None:
        # Connects the anymail tracking signal (bounces, complaints, deliveries) to the email log.
        # Double opt-in: the contacts app asks for confirmation emails through this seam.
        from contacts.confirmation import install_confirmation_mailer
        from emails import webhooks  # noqa: F401
        from emails.confirmation import EmailConfirmationMailer

        install_confirmation_mailer(EmailConfirmationMailer())
