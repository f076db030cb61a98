"""A real headless Chromium uploads a contacts file and watches the import's progress bar finish, on
the Studio as `bin/run` serves it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.import_jobs import contacts_import_run, import_dir, import_progress
from contacts.models import Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = "user_id,email,plan\nu1,ada@example.com,pro\nu2,not-an-email,free\nu3,cy@example.com,team\n"


def test_an_operator_uploads_contacts_and_the_page_follows_the_job_to_its_report(
    studio_browser, django_user_model, tmp_path
):
    # The web process and this test share the default import directory (.run/imports).
    django_user_model.objects.create_superuser("operator", "op@example.com", "correct horse")
    upload = tmp_path / "contacts.csv"
    upload.write_text(CSV)

    studio_browser.login()
    page = studio_browser.visit(reverse("admin:contacts_contact_changelist"), shot="studio-contacts.png")
    page.click("#contacts-import")
    page.set_input_files("#id_file", str(upload))
    page.click("#contacts-import-form input[type=submit]")

    # No Celery worker runs here: the job waits in the queue and the page says so.
    page.wait_for_selector("#import-progress")
    assert page.locator("#import-state").inner_text() == "queued"
    import_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert import_progress(import_id=import_id)["filename"] == "contacts.csv"

    # The worker's unit of work, as the Celery task runs it; the open page polls and shows the report.
    contacts_import_run(import_id=import_id, path=str(import_dir() / f"{import_id}.csv"))
    page.wait_for_selector("#import-errors")
    assert page.locator("#import-state").inner_text() == "done"
    assert page.locator("#import-progress").get_attribute("value") == "3"
    assert "2 created" in page.locator("#import-report").inner_text()
    assert page.locator("#import-errors tbody tr").count() == 1
    assert "not a valid email address" in page.locator("#import-errors").inner_text()
    studio_browser.check(shot="studio-contacts-import.png")
    assert set(Contact.objects.values_list("user_id", flat=True)) == {"u1", "u3"}
