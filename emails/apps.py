from __future__ import annotations

from django.apps import AppConfig


class EmailsConfig(AppConfig):
    name = "emails"
    verbose_name = "Email"

    def ready(self) -> None:
        # Connects the anymail tracking signal (bounces, complaints, deliveries) to the email log.
        # Double opt-in: the contacts app asks for confirmation emails through this seam.
        # An erased contact's address and props leave the email log through the erasure seam.
        from contacts.confirmation import install_confirmation_mailer
        from contacts.erasure import forgetter_install
        from contacts.selectors import timeline_source_install
        from emails import webhooks  # noqa: F401
        from emails.confirmation import EmailConfirmationMailer
        from emails.policy import policy_check
        from emails.selectors import contact_emails_timeline
        from emails.services import email_logs_forget

        install_confirmation_mailer(EmailConfirmationMailer())
        forgetter_install(name="emails", forget=email_logs_forget)
        timeline_source_install(name="emails", source=contact_emails_timeline)
        policy_check()  # a wrong quiet-hours or caps setting fails the boot, not the first send
