"""What keeping membership costs an ingested event: nothing for an event no segment reads, one
statement for one that a segment reads, and that statement prepared once per connection."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.models import SegmentMembership
from audiences.segments import define_segment
from contacts.ingest import event_ingest
from contacts.models import Contact

pytestmark = pytest.mark.django_db


def _statements(captured: CaptureQueriesContext) -> list[str]:
    # A prepared statement is logged without its text (None): counted, as ""
    return [q["sql"] or "" for q in captured.captured_queries if "SAVEPOINT" not in (q["sql"] or "")]


@pytest.fixture
def segments(only_segments):
    only_segments(
        define_segment("never-bought", name="N", where=lambda b: b.event("checkout.completed").never()),
        define_segment("pro", name="P", where=lambda b: b.prop("plan").eq("pro")),
        define_segment("busy", name="B", where=lambda b: b.event("feature.used").at_least(2)),
    )


def test_an_event_no_segment_reads_costs_its_ingest_statement_alone(segments):
    event_ingest(name="page.viewed", user_id="ada")
    with CaptureQueriesContext(connection) as captured:
        event_ingest(name="page.viewed", user_id="ada")
    statements = _statements(captured)
    assert len(statements) == 1, statements
    assert not any("audiences_segmentmembership" in sql for sql in statements)


def test_an_event_a_segment_reads_costs_one_membership_statement(segments):
    event_ingest(name="feature.used", user_id="ada")
    event_ingest(name="feature.used", user_id="ada")  # in "busy" now: the next changes nothing
    with CaptureQueriesContext(connection) as captured:
        event_ingest(name="feature.used", user_id="ada", contact_properties={"plan": "free"})
    assert len(_statements(captured)) == 2, _statements(captured)  # the ingest, the membership


def test_a_new_contact_whose_first_event_no_segment_reads_still_enters_its_segments(
    segments, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # checked once the event commits
        event_ingest(name="page.viewed", user_id="ada")
    ada = Contact.objects.get(user_id="ada")
    assert set(SegmentMembership.objects.filter(contact=ada).values_list("segment_id", flat=True)) == {
        "never-bought"
    }
