from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from contacts.imports import contacts_import
from contacts.models import Contact
from contacts.services import contact_category_set, contact_unsubscribe

pytestmark = pytest.mark.django_db

CSV = """user_id,email,subscribed,category_opt_outs,plan,properties
u1,ada@example.com,true,,pro,"{""seats"": 3}"
u2,bob@example.com,false,product-updates,free,
u3,not-an-email,true,,,
,nobody@example.com,true,,,
u4,cy@example.com,maybe,nope,,[1]
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def export(fmt="csv") -> str:
    out = io.StringIO()
    call_command("contacts_export", "--format", fmt, stdout=out)
    return out.getvalue()


def test_a_csv_import_creates_contacts_and_reports_each_bad_row_with_its_field(tmp_path):
    report = contacts_import(path=write(tmp_path, "contacts.csv", CSV))

    assert (report.rows, report.created, report.rejected) == (5, 2, 3)
    ada = Contact.objects.get(user_id="u1")
    assert (ada.email, ada.properties, ada.is_subscribed) == (
        "ada@example.com",
        {"seats": 3, "plan": "pro"},
        True,
    )
    bob = Contact.objects.get(user_id="u2")
    assert bob.unsubscribed_at is not None and bob.category_opt_outs == ["product-updates"]
    assert [(e.row, e.field) for e in report.errors] == [
        (4, "email"),
        (5, "user_id"),
        (6, "properties"),
        (6, "subscribed"),
        (6, "category_opt_outs"),
    ]
    assert "unknown categories nope" in report.errors[-1].message


def test_running_the_same_import_twice_changes_nothing_the_second_time(tmp_path):
    path = write(tmp_path, "contacts.csv", CSV)
    contacts_import(path=path)
    stamps = dict(Contact.objects.values_list("user_id", "updated_at"))

    again = contacts_import(path=path)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert dict(Contact.objects.values_list("user_id", "updated_at")) == stamps


def test_an_import_never_resubscribes_a_contact_who_unsubscribed_or_opted_out(tmp_path):
    ada = Contact.objects.create(user_id="u1", email="ada@example.com", properties={"plan": "free"})
    contact_unsubscribe(contact=ada)
    contact_category_set(contact=ada, category="tips", subscribed=True)
    contact_category_set(contact=ada, category="product-updates", subscribed=False)
    rows = [
        {"userId": "u1", "subscribed": True, "category_opt_ins": ["tips"], "properties": {"plan": "pro"}},
        {"userId": "u1", "category_opt_outs": ["tips"]},  # a later row for the same contact wins too
    ]
    path = write(tmp_path, "contacts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    report = contacts_import(path=path)

    ada.refresh_from_db()
    assert ada.unsubscribed_at is not None
    assert ada.category_opt_outs == ["product-updates", "tips"] and ada.category_opt_ins == []
    assert report.kept_unsubscribed == 0  # the last row for u1 did not ask to subscribe
    assert (report.updated, report.rejected) == (1, 0)


def test_a_subscribed_row_for_an_unsubscribed_contact_is_counted_and_ignored(tmp_path):
    contact_unsubscribe(contact=Contact.objects.create(user_id="u1", email="ada@example.com"))
    report = contacts_import(path=write(tmp_path, "c.csv", "user_id,subscribed\nu1,yes\n"))
    assert report.kept_unsubscribed == 1
    assert Contact.objects.get(user_id="u1").unsubscribed_at is not None


def test_properties_merge_and_an_empty_email_keeps_the_known_one(tmp_path):
    Contact.objects.create(user_id="u1", email="ada@example.com", properties={"plan": "free", "seats": 1})
    contacts_import(path=write(tmp_path, "c.csv", "user_id,email,plan\nu1,,pro\n"))
    ada = Contact.objects.get(user_id="u1")
    assert (ada.email, ada.properties) == ("ada@example.com", {"plan": "pro", "seats": 1})


def test_the_command_prints_the_rate_and_the_rejected_rows(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    report_path = tmp_path / "report.csv"
    call_command(
        "contacts_import",
        str(write(tmp_path, "contacts.csv", CSV)),
        "--chunk-size",
        "1",
        "--report",
        str(report_path),
        stdout=out,
        stderr=err,
    )
    assert "5 rows in" in out.getvalue() and "rows/s" in out.getvalue()
    assert "2 created" in out.getvalue() and "3 rejected" in out.getvalue()
    assert "row 4: email: 'not-an-email' is not a valid email address" in err.getvalue()
    assert report_path.read_text().splitlines()[0] == "row,field,message"
    assert len(report_path.read_text().splitlines()) == 6


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_imports_back_into_an_empty_database_unchanged(tmp_path, fmt):
    when = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    Contact.objects.create(user_id="u1", email="ada@example.com", properties={"plan": "pro", "n": [1, 2]})
    Contact.objects.create(
        user_id="u2",
        email="bob@example.com",
        unsubscribed_at=when,
        category_opt_outs=["product-updates"],
        category_opt_ins=["tips"],
        properties={"quote": 'say "hi", then; leave'},
    )
    Contact.objects.create(user_id="u3", email="", erased_at=timezone.now())  # erased: not exported
    first = export(fmt)
    path = write(tmp_path, f"contacts.{fmt}", first)

    Contact.objects.all().delete()
    report = contacts_import(path=path)

    assert (report.created, report.rejected) == (2, 0)

    def without_created_at(text: str) -> list[str]:
        if fmt == "jsonl":
            return sorted(json.dumps({**json.loads(line), "created_at": None}) for line in text.splitlines())
        return sorted(line.rsplit(",", 1)[0] for line in text.splitlines())

    assert without_created_at(export(fmt)) == without_created_at(first)
    bob = Contact.objects.get(user_id="u2")
    assert (bob.unsubscribed_at, bob.category_opt_ins) == (when, ["tips"])


def test_the_export_has_the_consent_columns(tmp_path):
    Contact.objects.create(user_id="u1", email="ada@example.com", category_opt_outs=["journey"])
    lines = export("csv").splitlines()
    assert (
        lines[0]
        == "user_id,email,subscribed,unsubscribed_at,category_opt_outs,category_opt_ins,properties,created_at"
    )
    assert lines[1].startswith("u1,ada@example.com,true,,journey,,{},")


def test_the_import_reports_progress_after_each_chunk(tmp_path):
    seen = []
    contacts_import(
        path=write(tmp_path, "contacts.csv", CSV),
        chunk_size=1,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[0] == (1, 5) and seen[-1] == (5, 5)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.fixture
def eager_celery(monkeypatch):
    from hogsend.celery import app

    # The app reads Django settings under the CELERY_ namespace, so the override goes by that name.
    monkeypatch.setitem(app.conf, "CELERY_TASK_ALWAYS_EAGER", True)


def test_a_studio_upload_runs_as_a_job_and_its_page_shows_the_report(
    admin_client, eager_celery, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    changelist = admin_client.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert 'id="contacts-import"' in changelist and 'id="contacts-export-csv"' in changelist

    upload = SimpleUploadedFile("contacts.csv", CSV.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:contacts_contact_import"), {"file": upload})
    assert response.status_code == 302
    status = admin_client.get(response["Location"] + "?format=json").json()
    assert (status["state"], status["done"], status["total"]) == ("done", 5, 5)
    assert (status["report"]["created"], status["report"]["rejected"]) == (2, 3)

    page = admin_client.get(response["Location"]).content.decode()
    assert 'id="import-errors"' in page and "&#x27;not-an-email&#x27; is not a valid email address" in page
    assert "2 created" in page
    assert Contact.objects.filter(user_id__in=["u1", "u2"]).count() == 2
    from contacts.models import AuditEntry

    assert AuditEntry.objects.get(action="contacts.import").detail["filename"] == "contacts.csv"


def test_the_studio_refuses_an_upload_that_is_not_csv_or_json_lines(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    upload = SimpleUploadedFile("contacts.xlsx", b"PK..", content_type="application/octet-stream")
    response = admin_client.post(reverse("admin:contacts_contact_import"), {"file": upload}, follow=True)
    assert "upload a .csv or .jsonl file" in response.content.decode().lower()


def test_the_studio_export_streams_the_same_file_as_the_command(admin_client):
    from django.urls import reverse

    Contact.objects.create(user_id="u1", email="ada@example.com")
    response = admin_client.get(reverse("admin:contacts_contact_export") + "?format=jsonl")
    assert response.streaming and response["Content-Disposition"] == 'attachment; filename="contacts.jsonl"'
    assert b"".join(response.streaming_content).decode() == export("jsonl")


def test_a_file_that_is_not_utf8_is_refused_with_a_message_not_a_traceback(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes("user_id,email\nu1,zoë@example.com\n".encode("latin-1"))
    with pytest.raises(CommandError, match="save the file as UTF-8"):
        call_command("contacts_import", str(path), "--no-progress", stdout=io.StringIO())


def test_a_csv_without_a_user_id_column_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no user_id column"):
        call_command(
            "contacts_import", str(write(tmp_path, "c.csv", "email\na@example.com\n")), "--no-progress"
        )
